-- series-nav.lua: end every post with a link to run it as a notebook, the series' table of
-- contents and previous / next links.
--
-- The list is built at render time from the front matter of posts/*/index.qmd (title, date;
-- ordered by date, oldest first), so a new post appears in every other post's navigation
-- without editing them and without re-executing any frozen post.

local function read_front_matter(path)
  local file = io.open(path, "r")
  if not file then return nil end
  local text = file:read("a")
  file:close()
  local yaml = text:match("^%-%-%-\r?\n(.-\r?\n)%-%-%-")
  if not yaml then return nil end
  return pandoc.read("---\n" .. yaml .. "---\n", "markdown").meta
end

local function series_posts(posts_dir)
  local posts = {}
  for _, slug in ipairs(pandoc.system.list_directory(posts_dir)) do
    local meta = read_front_matter(pandoc.path.join({ posts_dir, slug, "index.qmd" }))
    if meta and meta.title and not meta.draft then
      table.insert(posts, {
        slug = slug,
        title = pandoc.utils.stringify(meta.title),
        date = meta.date and pandoc.utils.stringify(meta.date) or "",
      })
    end
  end
  table.sort(posts, function(a, b)
    if a.date == b.date then return a.slug < b.slug end
    return a.date < b.date
  end)
  return posts
end

local function link(post, label)
  return pandoc.Link(label or post.title, "../" .. post.slug .. "/index.html")
end

function Pandoc(doc)
  local input = quarto.doc.input_file
  local posts_dir = pandoc.path.join({ quarto.project.directory, "posts" })
  local here = pandoc.path.filename(pandoc.path.directory(input))
  if pandoc.path.filename(pandoc.path.directory(pandoc.path.directory(input))) ~= "posts" then
    return nil
  end
  local posts = series_posts(posts_dir)
  local items, index = {}, nil
  for i, post in ipairs(posts) do
    if post.slug == here then
      index = i
      table.insert(items, { pandoc.Plain({ pandoc.Strong(post.title), pandoc.Str(" (this post)") }) })
    else
      table.insert(items, { pandoc.Plain({ link(post) }) })
    end
  end
  if not index then return nil end
  local nav = {}
  if index > 1 then
    table.insert(nav, pandoc.Span({ pandoc.Str("← Previous: "), link(posts[index - 1]) },
      { class = "series-prev" }))
  end
  if index < #posts then
    table.insert(nav, pandoc.Span({ pandoc.Str("Next: "), link(posts[index + 1]), pandoc.Str(" →") },
      { class = "series-next" }))
  end
  -- The post as a notebook (tools/notebooks.py writes index.ipynb next to the page).
  local run = pandoc.Para({
    -- index.ipynb exists only after the post-render step: data-noresolveinput keeps Quarto's
    -- link check (which resolves links against the sources) from warning about it
    pandoc.Strong("Run it yourself: "),
    pandoc.RawInline("html", '<a href="index.ipynb" download data-noresolveinput="true">'
      .. "download this post as a notebook</a>"),
    pandoc.Str(" and run it from "), pandoc.Code("posts/" .. here .. "/"),
    pandoc.Str(" in a clone of the repository, after "), pandoc.Code("make test"),
    pandoc.Str(" has set up its environment."),
  })
  local blocks = {
    pandoc.Div(run, { class = "series-run" }),
    pandoc.Header(2, "In this series", { id = "in-this-series", class = "unnumbered unlisted" }),
    pandoc.OrderedList(items),
  }
  if #nav > 0 then
    table.insert(blocks, pandoc.Div(pandoc.Plain(nav), { class = "series-pager" }))
  end
  doc.blocks:insert(pandoc.Div(blocks, { class = "series-nav" }))
  return doc
end
