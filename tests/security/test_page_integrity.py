"""Model output cannot clobber the page, and no URL in it makes the browser fetch anything.

Every payload below is the answer of both models, streamed by the local OpenAI-protocol server
(``fixed`` behaviour) into a live battle (two rounds, then the vote and the reveal), and stored
as both answers of an eval-set pair (the vote page, then the revealed transcript). Each text
carries every URL twice: once at a local listener on another port (another origin) and once at
a same-origin path ``/probe/...`` (which the policy's 'self' would let through, so only the
sanitizer stops it). Payloads:

    ids-battle      <div id=...> for every id the battle page uses (battle, pane-a, pane-b,
                    status-a, status-b, conv-a, conv-b, notice, reveal, prompt-form, prompt,
                    category, send, regenerate, new-round, recorded-notice)
    ids-evalset     <div id=...> for every id of the eval-set vote and result pages (evalset-vote,
                    prompt-text, leak-notice, answer-a, answer-b, answers, vote-form, result-line,
                    reveal-names, transcript, transcript-a, transcript-b)
    names           <a name=...> for every id above, and names that shadow document properties
    heading         a "## Summary" Markdown heading, as many answers have
    table-bg        <table background=URL>
    td-th-bg        <td background=URL>, <th background=URL>
    srcset          <img srcset=URL>, <picture><source srcset=URL>
    svg-image       <svg><image href=URL>
    link            <link rel=stylesheet href=URL>, <link rel=prefetch href=URL>
    meta-refresh    <meta http-equiv=refresh content="0;url=URL">
    form-action     <form action=URL><button>, <input type=image src=URL>
    base-href       <base href=URL> (would redirect the page's own relative URLs)
    style-url       style="background:url(URL)"
    style-import    <style>@import url(URL)</style>
    media           ![image](URL), <video poster=URL>, <audio src=URL>, <iframe src=URL>,
                    <object data=URL>, <embed src=URL>
    javascript      [link](javascript:...), <a href="javascript:...">

For each payload the test counts the attempts (pages it was rendered on), the attempts where the
page was clobbered (a pane, header, status, notice or reveal not where and what the page put
there, or model output kept an id, a name, a page class or a URL-bearing attribute), and the
requests it caused (at the listener, to /probe/, or anywhere off the page's origin). It writes
the table to tests/artifacts/page-integrity.md and asserts both counts are zero.
"""

import json
import re
import time
from pathlib import Path

import pytest

from tests.security.browser import Listener, Watch, first_password, sign_in, wait_js
from tests.support import daphne_server, manage, server_env
from tests.upstream import FakeUpstream, fixed_spec

pytestmark = pytest.mark.browser

BATTLE_IDS = [
    "battle", "pane-a", "pane-b", "status-a", "status-b", "conv-a", "conv-b", "notice", "reveal",
    "prompt-form", "prompt", "category", "send", "regenerate", "new-round", "recorded-notice",
]  # fmt: skip
EVALSET_IDS = [
    "evalset-vote", "prompt-text", "leak-notice", "answer-a", "answer-b", "answers", "vote-form",
    "result-line", "reveal-names", "transcript", "transcript-a", "transcript-b",
]  # fmt: skip
SHADOWED = ["getElementById", "querySelector", "cookie", "body", "forms", "location", "ArenaRender"]


def _divs(ids):
    return "\n".join(f'<div id="{i}" class="pane notice votes">fake {i}</div>' for i in ids)


# {url} is filled in twice: with the listener's origin and with the page's own /probe/ path.
PAYLOADS = {
    "ids-battle": _divs(BATTLE_IDS),
    "ids-evalset": _divs(EVALSET_IDS),
    "names": " ".join(f'<a name="{n}">{n}</a>' for n in BATTLE_IDS + EVALSET_IDS + SHADOWED),
    "heading": "## Summary\n\nShort answer.\n\n## Details\n\nLonger answer.",
    "table-bg": '<table background="{url}/table-bg"><tr><td>cell</td></tr></table>',
    "td-th-bg": '<table><tr><th background="{url}/th-bg">h</th>'
    '<td background="{url}/td-bg">d</td></tr></table>',
    "srcset": '<img srcset="{url}/img-srcset 1x"><picture><source srcset="{url}/source-srcset">'
    '<img src="{url}/picture-img"></picture>',
    "svg-image": '<svg width="10" height="10"><image href="{url}/svg-image" width="10" '
    'height="10"/></svg>',
    "link": '<link rel="stylesheet" href="{url}/link-css"><link rel="prefetch" '
    'href="{url}/link-prefetch">',
    "meta-refresh": '<meta http-equiv="refresh" content="0;url={url}/meta-refresh">',
    "form-action": '<form action="{url}/form-action" method="get"><button>Go</button>'
    '<input type="image" src="{url}/input-image"></form>',
    "base-href": '<base href="{url}/base-href/">\n\n[relative](relative-link)',
    "style-url": '<div style="background:url({url}/style-url);width:9px;height:9px">x</div>',
    "style-import": "<style>@import url({url}/style-import);</style>",
    "media": '![image]({url}/md-image)\n\n<video poster="{url}/video-poster"></video>'
    '<audio src="{url}/audio" autoplay></audio><iframe src="{url}/iframe"></iframe>'
    '<object data="{url}/object"></object><embed src="{url}/embed">',
    "javascript": "[click me](javascript:window.__pwned=1)\n\n"
    '<a href="javascript:window.__pwned=2">and me</a> <a href=" JaVaScRiPt:window.__pwned=3">x</a>',
}

MODELS = """
[[model]]
name = "Kestrel Ultra"
organisation = "Kestrel Labs"
kind = "openai"
base_url = "{url}"
model_id = "kestrel-ultra-0612"

[[model]]
name = "Badger Base"
organisation = "Badger Labs"
kind = "openai"
base_url = "{url}"
model_id = "badger-base-0612"
"""
MARKS = {"Kestrel Ultra": "Signed-ALPHA", "Badger Base": "Signed-OMEGA"}
MODEL_IDS = {"Kestrel Ultra": "kestrel-ultra-0612", "Badger Base": "badger-base-0612"}
PAGE_TEXTS = ["Both answers are in", "your vote counts", "not counted", "Press New round",
              "answering…", "done ·", "Model A", "Model B", "A: ", "B: "]  # fmt: skip

# Inside rendered model output: anything that names an element, wears the page's classes or
# carries a URL the browser would load.
UNSAFE_MARKUP = """(root) => {
  const found = [];
  root.querySelectorAll(".markdown *").forEach((el) => {
    for (const attr of ["id", "name", "style", "src", "srcset", "background", "poster", "action",
                        "data", "formaction"]) {
      if (el.hasAttribute(attr)) found.push(el.tagName + "[" + attr + "]");
    }
    const tags = /^(IMG|PICTURE|SOURCE|SVG|IMAGE|LINK|META|BASE|FORM|INPUT|BUTTON|STYLE|VIDEO|\
AUDIO|IFRAME|OBJECT|EMBED)$/i;
    if (tags.test(el.tagName)) found.push(el.tagName);
    const foreign = Array.from(el.classList).filter((c) => !/^(hljs|language-)/.test(c));
    if (foreign.length) found.push(el.tagName + "." + foreign.join("."));
    const href = el.getAttribute("href");
    if (href && /^\\s*javascript:/i.test(href)) found.push("javascript: href");
  });
  if (window.__pwned) found.push("javascript ran");
  return found;
}"""


def _answer(payload: str, name: str, listener: Listener) -> str:
    text = PAYLOADS[payload]
    both = text.replace("{url}", f"{listener.origin}/{payload}")
    both += "\n\n" + text.replace("{url}", f"/probe/{payload}")
    return f"{both}\n\n{MARKS[name]}"


EVALSETS = """
import json
from arena.models import Answer, Contestant, PromptItem, PromptSet
answers = json.load(open({path!r}))
ids = {{}}
for payload, texts in answers.items():
    prompt_set = PromptSet.objects.create(name="Hostile " + payload)
    item = PromptItem.objects.create(prompt_set=prompt_set, external_id=payload,
                                     text="Tell me about " + payload)
    for name, text in texts.items():
        Answer.objects.create(item=item, contestant=Contestant.objects.get(name=name), text=text)
    ids[payload] = prompt_set.pk
print(json.dumps(ids))
"""


def _marks(page, selector: str) -> list[str]:
    """The marks of the answers in the elements `selector` finds, in order."""
    texts = page.locator(selector).all_inner_texts()
    return [",".join(m for m in MARKS.values() if m in t) for t in texts]


def _markdown_has_page_text(page) -> list[str]:
    texts = page.locator(".markdown").all_inner_texts()
    return [p for p in PAGE_TEXTS if any(p in t for t in texts)]


def _check_battle_round(page, rounds: int) -> list[str]:
    """What is wrong with the battle page after `rounds` rounds, found by structure only."""
    problems = []
    panes = "main > #battle > .panes > article.pane"
    for i, (side, title) in enumerate((("a", "Model A"), ("b", "Model B"))):
        pane = f"{panes}:nth-child({i + 1})"
        if page.locator(f"{pane} > header > h2").inner_text() != title:
            problems.append(f"pane {side} header")
        if not page.locator(f"{pane} > header > .status").inner_text().startswith("done"):
            problems.append(f"pane {side} status")
        children = page.locator(f"{pane} > .conversation > *")
        classes = [children.nth(k).get_attribute("class") for k in range(children.count())]
        expected = ["msg user", "msg assistant markdown"] * rounds
        if classes != expected:
            problems.append(f"pane {side} conversation {classes}")
        marks = _marks(page, f"{pane} > .conversation > .msg.assistant")
        if len(set(marks)) != 1 or "," in marks[0] or not marks[0]:
            problems.append(f"pane {side} answers {marks}")
    if len(set(_marks(page, f"{panes} > .conversation > .msg.assistant"))) != 2:
        problems.append("both panes show the same model")
    notice = page.locator("main > #battle > #notice").inner_text()
    if notice != "Both answers are in. Which is better?":
        problems.append(f"notice {notice!r}")
    problems += [f"page text in answer: {t}" for t in _markdown_has_page_text(page)]
    problems += page.evaluate(f"({UNSAFE_MARKUP})(document)")
    return problems


def _check_battle_reveal(page) -> list[str]:
    problems = []
    panes = "main > #battle > .panes > article.pane"
    for i, side in enumerate("AB"):
        pane = f"{panes}:nth-child({i + 1})"
        header = page.locator(f"{pane} > header > h2").inner_text()
        marks = _marks(page, f"{pane} > .conversation > .msg.assistant")
        name = header.removeprefix(f"{side}: ")
        if not header.startswith(f"{side}: ") or MARKS.get(name) != marks[0]:
            problems.append(f"pane {side} revealed as {header!r} but shows {marks}")
    reveal = page.locator("main > #battle > #reveal").inner_text()
    if not reveal.startswith(("Thanks, your vote counts.", "Vote stored but not counted")):
        problems.append(f"reveal {reveal!r}")
    problems += [f"page text in answer: {t}" for t in _markdown_has_page_text(page)]
    return problems


def _check_evalset(page) -> list[str]:
    problems = []
    panes = "main > #evalset-vote > .panes > article.pane"
    for i, title in enumerate(("Model A", "Model B")):
        pane = f"{panes}:nth-child({i + 1})"
        if page.locator(f"{pane} > header > h2").inner_text() != title:
            problems.append(f"{title} header")
        marks = _marks(page, f"{pane} > .markdown")
        if len(marks) != 1 or not marks[0] or "," in marks[0]:
            problems.append(f"{title} shows {marks}")
    if len(set(_marks(page, f"{panes} > .markdown"))) != 2:
        problems.append("both panes show the same answer")
    if page.locator("main > #evalset-vote > #vote-form > button").count() != 4:
        problems.append("vote form")
    problems += page.evaluate(f"({UNSAFE_MARKUP})(document)")
    return problems


def _check_result(page) -> list[str]:
    problems = []
    panes = "main > #reveal-names > article.pane"
    for i, side in enumerate("AB"):
        pane = f"{panes}:nth-child({i + 1})"
        header = page.locator(f"{pane} > header > h2").inner_text()
        children = page.locator(f"{pane} > .conversation > *")
        classes = [children.nth(k).get_attribute("class") for k in range(children.count())]
        if classes != ["msg user", "msg assistant markdown"]:
            problems.append(f"pane {side} conversation {classes}")
        marks = _marks(page, f"{pane} > .conversation > .msg.assistant")
        name = header.removeprefix(f"{side}: ")
        if MARKS.get(name) not in marks[:1]:
            problems.append(f"pane {side} revealed as {header!r} but shows {marks}")
    problems += page.evaluate(f"({UNSAFE_MARKUP})(document)")
    return problems


def _settled(check, page, *args, timeout: float = 5.0) -> list[str]:
    """check(page, *args) once it finds nothing, or what it still finds after `timeout` s: the
    last streamed chunk may still be waiting for its animation frame."""
    deadline = time.monotonic() + timeout
    while True:
        problems = check(page, *args)
        if not problems or time.monotonic() > deadline:
            return problems
        page.wait_for_timeout(100)


def _attempt(stage: str, run, *args) -> list[str]:
    """The problems run(*args) found; a page that stopped working is one too."""
    try:
        return run(*args)
    except Exception as exc:  # a Playwright timeout or a wait_js that never came true
        return [f"{stage}: stopped working: {str(exc).splitlines()[0][:200]}"]


def _play(page, base, upstream, payload, listener) -> list[str]:
    """A live battle: two rounds of the payload, the vote, the reveal."""
    for name, model_id in MODEL_IDS.items():
        upstream.set_behaviour(model_id, fixed_spec(_answer(payload, name, listener)))
    page.goto(base + "/battle/")
    problems = []
    for rounds in (1, 2):
        page.locator("main > #battle > #prompt-form > #prompt").fill(f"Tell me about {payload}")
        page.locator("main > #battle > #prompt-form #send").click()
        wait_js(page, "!document.querySelector('main > #battle > .votes > button').disabled", 20)
        checked = _settled(_check_battle_round, page, rounds)
        problems += [f"battle: round {rounds}: {p}" for p in checked]
    page.keyboard.press("1")
    wait_js(page, "!document.querySelector('main > #battle > #reveal').hidden", 10)
    problems += [f"battle: reveal: {p}" for p in _settled(_check_battle_reveal, page)]
    return problems


def _evalset(page, base, set_id) -> list[str]:
    page.goto(f"{base}/evalsets/{set_id}/vote/")
    wait_js(page, "document.querySelectorAll('main > #evalset-vote .markdown').length === 2")
    problems = [f"eval-set vote: {p}" for p in _settled(_check_evalset, page)]
    page.locator("main > #evalset-vote > #vote-form > button[value=a]").click()
    page.wait_for_url(re.compile(r".*/battles/\d+/$"))
    wait_js(page, "document.querySelectorAll('main > #reveal-names .msg.assistant').length === 2")
    problems += [f"battle result: {p}" for p in _settled(_check_result, page)]
    return problems


def test_model_output_cannot_clobber_the_page_or_fetch(tmp_path, chromium_browser, artifacts_dir):
    with FakeUpstream() as upstream, Listener() as listener:
        # One account plays every payload, two rounds each, within a minute.
        env = server_env(tmp_path, ARENA_PROMPTS_PER_MINUTE="1000")
        password = first_password(manage(env, "serve", "--prepare-only", "--no-demo").stdout)
        (tmp_path / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(tmp_path / "models.toml"))
        answers = {p: {n: _answer(p, n, listener) for n in MARKS} for p in PAYLOADS}
        (tmp_path / "answers.json").write_text(json.dumps(answers))
        script = EVALSETS.format(path=str(tmp_path / "answers.json"))
        set_ids = json.loads(manage(env, "shell", "-c", script).stdout.strip().splitlines()[-1])

        rows, failures = [], {}
        with daphne_server(env, tmp_path / "daphne.log") as base:
            context = chromium_browser.new_context(viewport={"width": 1366, "height": 900})
            sign_in(context.new_page(), base, password)
            state = context.storage_state()
            context.close()
            for payload in PAYLOADS:
                context = chromium_browser.new_context(
                    viewport={"width": 1366, "height": 900}, storage_state=state
                )
                page = context.new_page()
                watch = Watch(page)
                hits_before = len(listener.hits)
                page.set_default_timeout(5_000)
                problems = _attempt("battle", _play, page, base, upstream, payload, listener)
                problems += _attempt("eval-set vote", _evalset, page, base, set_ids[payload])
                attempts = 3  # the live battle, the eval-set vote page, the revealed result
                watch.collect()
                page.wait_for_timeout(200)  # late fetches (prefetch, refresh) still count
                context.close()
                fetched = list(listener.hits[hits_before:])
                fetched += [u for u in watch.requests if "/probe/" in u or not u.startswith(base)]
                # A fetch the policy stopped still counts. DOMPurify's parse of the raw answer
                # in its inert document reports <base> (base-uri) and inline styles (blocked
                # "inline") to the page's policy: no request, and nothing of it is kept.
                fetched += [
                    f"CSP blocked {v}"
                    for v in watch.violations
                    if v["directive"] != "base-uri" and v["blocked"] != "inline"
                ]
                clobbered = len({p.split(":", 1)[0] for p in problems})
                rows.append((payload, attempts, clobbered, len(fetched)))
                if problems or fetched or watch.errors:
                    failures[payload] = {"clobbered": problems, "fetched": fetched,
                                         "errors": watch.errors}  # fmt: skip

    table = ["| payload | attempts | clobbered | fetched |", "| --- | --- | --- | --- |"]
    table += [f"| {p} | {a} | {c} | {f} |" for p, a, c, f in rows]
    (artifacts_dir / "page-integrity.md").write_text("\n".join(table) + "\n")
    (artifacts_dir / "page-integrity.json").write_text(json.dumps(failures, indent=1))
    print("\n".join(table))
    assert listener.hits == []
    assert failures == {}


SHOTS = Path("/tmp/shots")


def test_screenshots_of_a_hostile_battle(tmp_path, chromium_browser):
    """Desktop and phone pictures of a battle whose answers carry the clobbering payloads,
    in /tmp/shots/ (for a person to look at; the test checks the page fits the phone)."""
    shots = SHOTS
    shots.mkdir(exist_ok=True)
    with FakeUpstream() as upstream, Listener() as listener:
        env = server_env(tmp_path)
        password = first_password(manage(env, "serve", "--prepare-only", "--no-demo").stdout)
        (tmp_path / "models.toml").write_text(MODELS.format(url=upstream.url))
        manage(env, "models", "sync", str(tmp_path / "models.toml"))
        hostile = "\n\n".join(PAYLOADS[p] for p in ("heading", "ids-battle", "table-bg", "names"))
        for name, model_id in MODEL_IDS.items():
            text = hostile.replace("{url}", listener.origin) + f"\n\n{MARKS[name]}"
            upstream.set_behaviour(model_id, fixed_spec(text))
        with daphne_server(env, tmp_path / "daphne.log") as base:
            for label, width, height in (("desktop", 1366, 900), ("phone", 390, 844)):
                context = chromium_browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                sign_in(page, base, password)
                page.goto(base + "/battle/")
                page.locator("#prompt").fill("Summarise the payloads")
                page.locator("#send").click()
                wait_js(page, "!document.querySelector('.votes button').disabled", 10)
                page.wait_for_timeout(150)
                page.screenshot(path=str(shots / f"battle-hostile-{label}.png"), full_page=True)
                page.keyboard.press("1")
                wait_js(page, "!document.getElementById('reveal').hidden", 10)
                revealed = shots / f"battle-hostile-{label}-revealed.png"
                page.screenshot(path=str(revealed), full_page=True)
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                context.close()
    assert listener.hits == []
