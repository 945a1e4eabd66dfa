// Model output is untrusted: Markdown -> HTML with marked, then sanitized by DOMPurify,
// then code blocks highlighted. Never assign model text to innerHTML any other way.
//
// What survives is text and inert formatting only:
// - nothing that names an element (id, name): the page's scripts hold references to their own
//   elements, and a model's <div id="conv-b"> must not even look like one of them;
// - nothing that makes the browser fetch a URL: no images, media, frames, objects, styles,
//   links or meta tags, and no background, srcset, poster, src, action, ping, cite attributes
//   (style attributes are dropped whole, so no url() in them either). Links (<a href>) stay:
//   they are followed only when the reader clicks, in a new tab, without a referrer;
// - no class but the language-* that marked gives code blocks, so an answer cannot put on
//   the page's own styles (a fake notice, a fake vote button).
(function () {
  "use strict";
  // As chat UIs show answers: a single line break stays a line break (a haiku keeps its lines).
  marked.use({ gfm: true, breaks: true });

  const FORBID_TAGS = [
    "style", "link", "meta", "base", "script", "noscript", "template", "slot",
    "form", "input", "button", "textarea", "select", "option", "optgroup", "datalist",
    "fieldset", "label", "output", "dialog", "map", "area",
    "iframe", "frame", "frameset", "object", "embed", "portal",
    "img", "image", "picture", "source", "track", "video", "audio", "canvas", "svg", "math",
  ];
  const FORBID_ATTR = [
    "id", "name", "style", "form", "for",
    "background", "src", "srcset", "poster", "action", "formaction", "ping", "cite",
    "longdesc", "lowsrc", "dynsrc", "usemap", "data", "codebase", "xlink:href",
    "popover", "popovertarget", "popovertargetaction", "nonce", "integrity", "loading",
  ];
  const CONFIG = {
    USE_PROFILES: { html: true },
    FORBID_TAGS: FORBID_TAGS,
    FORBID_ATTR: FORBID_ATTR,
    ALLOW_DATA_ATTR: false,
    SANITIZE_NAMED_PROPS: true, // in case an id or name ever gets through: prefixed, not live
  };
  const LANGUAGE_CLASS = /^language-[\w+#.-]+$/;

  DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    if (data.attrName !== "class") return;
    const kept = data.attrValue.split(/\s+/).filter((c) => LANGUAGE_CLASS.test(c));
    if (kept.length) data.attrValue = kept.join(" ");
    else data.keepAttr = false;
  });

  function renderMarkdown(target, text) {
    target.innerHTML = DOMPurify.sanitize(marked.parse(text), CONFIG);
    target.querySelectorAll("pre code").forEach((el) => hljs.highlightElement(el));
    target.querySelectorAll("a").forEach((a) => {
      a.setAttribute("rel", "noopener noreferrer nofollow");
      a.setAttribute("target", "_blank");
      a.setAttribute("referrerpolicy", "no-referrer");
    });
  }
  window.ArenaRender = { renderMarkdown };
})();
