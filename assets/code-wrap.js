// Long code lines wrap under their own indentation, on a phone as on a desktop. Each source line
// is one span; its leading spaces are kept in the text (copying the code keeps them) but drawn
// at zero width, and the line is indented by padding instead: its first row starts at its
// indentation, its wrapped rows four characters further in. A deep indentation is capped at 45 %
// of the block, so an aligned continuation line still has room on a phone.
document.addEventListener("DOMContentLoaded", () => {
  for (const line of document.querySelectorAll("div.sourceCode pre code > span")) {
    let text = line.firstChild;
    while (text && text.nodeName === "A") text = text.nextSibling;  // the line's anchor
    const lead = text && text.nodeType === Node.TEXT_NODE ? text.data.match(/^ */)[0].length : 0;
    if (lead) {
      const spaces = document.createElement("span");
      spaces.className = "code-indent";
      spaces.textContent = text.data.slice(0, lead);
      text.data = text.data.slice(lead);
      line.insertBefore(spaces, text);
    }
    line.style.paddingLeft = `min(${lead + 4}ch, 45%)`;
    line.style.textIndent = "-4ch";
  }
});
