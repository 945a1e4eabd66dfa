// Model output is untrusted: Markdown -> HTML with marked, then sanitized by DOMPurify,
// then code blocks highlighted. Never assign model text to innerHTML any other way.
// Images and media are dropped: a URL in model output must not make the browser call out.
(function () {
  "use strict";
  marked.use({ gfm: true, breaks: false });
  function renderMarkdown(target, text) {
    const html = DOMPurify.sanitize(marked.parse(text), {
      USE_PROFILES: { html: true },
      FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "img", "picture", "source", "video", "audio"],
      FORBID_ATTR: ["style"],
    });
    target.innerHTML = html;
    target.querySelectorAll("pre code").forEach((el) => hljs.highlightElement(el));
    target.querySelectorAll("a").forEach((a) => {
      a.setAttribute("rel", "noopener noreferrer nofollow");
      a.setAttribute("target", "_blank");
    });
  }
  window.ArenaRender = { renderMarkdown };
})();
