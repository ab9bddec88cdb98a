"""Checks any dashboard page must pass in a real browser, whatever state it shows (issue 12).

- `assert_controls_pressable(page, selector)`: every visible control matching `selector` can be
  pressed where it is drawn. Each control is scrolled into view the way a browser does before a
  click or on keyboard focus (`block: "nearest"`), and `document.elementFromPoint` at its centre,
  and half-way from the centre to each edge, must be the control itself or inside it. A sticky
  footer, a fixed badge, an overlapping panel or a clipping container fails it, naming the
  element that is hit instead. Disabled controls count too: covered is covered.
- `assert_pressable_at_sizes(page, selector)`: the same at each of `VIEWPORTS` (phone, tablet
  upright, tablet landscape, laptop); the page's own viewport is restored afterwards.
- `assert_no_axe_violations(page)`: axe-core (shipped inside axe-playwright-python, no CDN) finds
  nothing at WCAG 2.2 AA (`WCAG_AA_TAGS`).

Scroll positions are restored after each check, so a test can go on as if nothing happened.
"""

from __future__ import annotations

from typing import Any

#: What counts as a control on the pages (anything a person can press, type in or tab to).
CONTROLS = (
    "button, input:not([type='hidden']), select, textarea, a[href], summary, "
    "[role='button'], [role='checkbox'], [role='slider'], [tabindex]:not([tabindex='-1'])"
)
#: Phone (390x844), tablet upright (768x1024), tablet landscape (1024x768), laptop (1366x900).
VIEWPORTS: tuple[tuple[int, int], ...] = ((390, 844), (768, 1024), (1024, 768), (1366, 900))
#: axe-core rule tags for WCAG 2.2 level A and AA.
WCAG_AA_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")

_PRESSABLE_JS = """
(selector) => {
  const describe = (el) => {
    if (!el) return "nothing (outside the page)";
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.classList && el.classList.length) s += "." + [...el.classList].join(".");
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim();
    if (text) s += ' "' + text.replace(/\\s+/g, " ").slice(0, 40) + '"';
    return s;
  };
  // remember every scroll position we may change, to put them back afterwards
  const saved = new Map();
  const remember = (el) => {
    for (let n = el.parentElement; n; n = n.parentElement) {
      if (!saved.has(n)) saved.set(n, [n.scrollLeft, n.scrollTop]);
    }
  };
  const winX = window.scrollX, winY = window.scrollY;
  const problems = [];
  const names = [];
  for (const el of document.querySelectorAll(selector)) {
    const visible = el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
    if (!visible) continue;
    const first = el.getBoundingClientRect();
    if (first.width < 1 || first.height < 1) continue; // not drawn (e.g. an empty wrapper)
    remember(el);
    el.scrollIntoView({ block: "nearest", inline: "nearest", behavior: "instant" });
    const r = el.getBoundingClientRect();
    const vw = document.documentElement.clientWidth;
    const vh = document.documentElement.clientHeight;
    const name = describe(el);
    names.push(name);
    if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > vh + 0.5) {
      problems.push(
        name + ": not fully on screen even when scrolled to (box " +
        [r.left, r.top, r.right, r.bottom].map((v) => v.toFixed(0)).join(",") +
        " in a " + vw + "x" + vh + " viewport)"
      );
    }
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    const points = [
      ["centre", cx, cy],
      ["left", cx - r.width / 4, cy],
      ["right", cx + r.width / 4, cy],
      ["top", cx, cy - r.height / 4],
      ["bottom", cx, cy + r.height / 4],
    ];
    for (const [where, x, y] of points) {
      const hit = document.elementFromPoint(x, y);
      if (hit === el || (hit && el.contains(hit))) continue;
      problems.push(
        name + ": its " + where + " (" + x.toFixed(0) + "," + y.toFixed(0) +
        ") is covered by " + describe(hit)
      );
      break; // one point is enough to say it is covered
    }
  }
  for (const [n, [left, top]] of saved) { n.scrollLeft = left; n.scrollTop = top; }
  window.scrollTo({ left: winX, top: winY, behavior: "instant" });
  return { names, problems };
}
"""


async def pressable_problems(page: Any, selector: str = CONTROLS) -> tuple[list[str], list[str]]:
    """(the visible controls checked, what is wrong with them) on `page` as it is now."""
    result = await page.evaluate(_PRESSABLE_JS, selector)
    return list(result["names"]), list(result["problems"])


async def assert_controls_pressable(
    page: Any, selector: str = CONTROLS, *, what: str = "", min_controls: int = 1
) -> list[str]:
    """Every visible control matching `selector` can be pressed; returns the controls checked.

    Fails naming each covered or unreachable control and what covers it, and when fewer than
    `min_controls` visible controls were found (a check of nothing passes nothing).
    """
    names, problems = await pressable_problems(page, selector)
    size = page.viewport_size or {}
    where = f"{what} at {size.get('width')}x{size.get('height')}".strip()
    assert not problems, f"{where}: controls that cannot be pressed:\n  " + "\n  ".join(problems)
    assert len(names) >= min_controls, (
        f"{where}: only {len(names)} visible control(s) matched {selector!r}: {names}"
    )
    return names


async def assert_pressable_at_sizes(
    page: Any,
    selector: str = CONTROLS,
    *,
    what: str = "",
    sizes: tuple[tuple[int, int], ...] = VIEWPORTS,
    min_controls: int = 1,
) -> dict[tuple[int, int], list[str]]:
    """`assert_controls_pressable` at each viewport size; restores the page's size afterwards.

    Returns the controls checked at each size. Every size is checked before failing, so the
    message lists every size where something is covered.
    """
    original = page.viewport_size
    checked: dict[tuple[int, int], list[str]] = {}
    failures: list[str] = []
    try:
        for width, height in sizes:
            await page.set_viewport_size({"width": width, "height": height})
            await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
            try:
                checked[(width, height)] = await assert_controls_pressable(
                    page, selector, what=what, min_controls=min_controls
                )
            except AssertionError as exc:
                failures.append(str(exc))
    finally:
        if original is not None:
            await page.set_viewport_size(original)
    assert not failures, "\n".join(failures)
    return checked


async def axe_violations(page: Any, tags: tuple[str, ...] = WCAG_AA_TAGS) -> list[dict[str, Any]]:
    """axe-core's violations on `page` for the given rule tags (the script ships in the package)."""
    from axe_playwright_python.async_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    result = await Axe().run(page, options=options)
    return list(result.response["violations"])


async def assert_no_axe_violations(
    page: Any, *, what: str = "", tags: tuple[str, ...] = WCAG_AA_TAGS
) -> None:
    """No axe-core violation at WCAG 2.2 AA; the message names each rule and element."""
    violations = await axe_violations(page, tags)
    lines = []
    for v in violations:
        targets = "; ".join(", ".join(map(str, n["target"])) for n in v["nodes"][:6])
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} -- {targets}")
    size = page.viewport_size or {}
    assert not lines, (
        f"{what} at {size.get('width')}x{size.get('height')}: axe found {len(lines)} "
        "violation(s):\n  " + "\n  ".join(lines)
    )
