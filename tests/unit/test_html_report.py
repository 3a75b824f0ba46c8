"""The self-contained HTML report: content, escaping, charts and trends, from report documents."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_fairmind.html import build_page, render_html
from pytest_fairmind.html.charts import bar_chart, group_label_lines, nice_ticks

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def rates(
    sr: float | None, tpr: float | None = 0.6, fpr: float | None = 0.2, acc: float | None = 0.8
) -> dict[str, Any]:
    return {"selection_rate": sr, "true_positive_rate": tpr, "false_positive_rate": fpr, "accuracy": acc}


def crossed_rows() -> list[dict[str, Any]]:
    return [
        {"group": {"sex": "female", "age": "<25"}, "count": 310, **rates(0.30)},
        {"group": {"sex": "female", "age": "25-60"}, "count": 950, **rates(0.33)},
        {"group": {"sex": "male", "age": "<25"}, "count": 12, **rates(0.55, tpr=None)},
        {"group": {"sex": "male", "age": "25-60"}, "count": 1020, **rates(0.60)},
    ]


def sex_rows() -> list[dict[str, Any]]:
    return [
        {"group": {"sex": "female"}, "count": 1260, **rates(0.32),
         "ci": {"selection_rate": [0.29, 0.35], "accuracy": [0.77, 0.83]}},
        {"group": {"sex": "male"}, "count": 1032, **rates(0.60),
         "ci": {"selection_rate": [0.57, 0.63], "accuracy": [0.78, 0.82]}},
    ]  # fmt: skip


def gate(expr: str, key: str, value: float, bound: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"expr": expr, "key": key, "value": value, "bound": bound, "passed": outcome != "fail",
            "outcome": outcome, **extra}  # fmt: skip


def document(
    *,
    started: datetime = T0,
    session_id: str = "current",
    project: str = "credit",
    ratio: float = 0.53,
    name: str = "credit.v2",
) -> dict[str, Any]:
    dp_outcome = "pass" if ratio >= 0.8 else "fail"
    gates = [
        gate("demographic_parity_ratio >= 0.8", "sex/demographic_parity_ratio", ratio, ">= 0.8", dp_outcome,
             rule="bound", ci_low=ratio - 0.05, ci_high=ratio + 0.05, p_value=0.001, alpha=0.025),
        gate("equalized_odds_difference <= 0.1", "sex/equalized_odds_difference", 0.09, "<= 0.1",
             "inconclusive", rule="bound"),
        gate("sex/demographic_parity_difference ~ 0.02", "sex/demographic_parity_difference", 0.28,
             "<= 0.22 (baseline 0.2, tolerance 0.02, lower is better)", "fail",
             rule="regression", baseline=0.2, change=0.08, direction="lower"),
    ]  # fmt: skip
    return {
        "schema": "pytest-fairmind/1",
        "session": {
            "id": session_id,
            "project": project,
            "started": started.isoformat(),
            "finished": (started + timedelta(seconds=9)).isoformat(),
            "exitstatus": 1,
            "git": {"commit": "4f2a9c1e0b7d5a3c", "branch": "main", "dirty": True},
        },
        "providers": {
            "mlflow": {
                "ok": True,
                "error": None,
                "target": "sqlite:///mlflow.db",
                "note": None,
                "runs": {name: {"id": "run-1", "url": "https://mlflow.example.com/#/runs/1", "path": None}},
            },
        },
        "models": {
            name: {
                "verdict": "fail",
                "metrics": {
                    "sex/demographic_parity_ratio": ratio,
                    "sex/equalized_odds_difference": 0.09,
                    "sex/equalized_odds_difference.ci_low": 0.06,
                    "sex/equalized_odds_difference.ci_high": 0.12,
                    "sex/demographic_parity_difference": 0.28,
                    "sex.age/equalized_odds_ratio": None,
                },
                "nonfinite": {"sex.age/equalized_odds_ratio": "nan"},
                "params": {"perf/estimator": "LogisticRegression"},
                "tags": {"team": "risk"},
                "groups": {"sex": sex_rows(), "sex.age": crossed_rows()},
                "tests": [{"nodeid": "test_credit.py::test_fair", "outcome": "passed"}],
                "gates": gates,
                "collisions": [],
            },
            "oracle": {
                "verdict": "pass",
                "metrics": {"perf/accuracy": 0.99},
                "nonfinite": {},
                "params": {},
                "tags": {},
                "groups": {},
                "tests": [{"nodeid": "test_credit.py::test_oracle", "outcome": "passed"}],
                "gates": [
                    {
                        "expr": "accuracy >= 0.9",
                        "key": "perf/accuracy",
                        "value": 0.99,
                        "bound": ">= 0.9",
                        "passed": True,
                    }
                ],
                "collisions": [],
            },
        },
        "gates_not_evaluated": ["typo_ratio >= 0.8"],
        "context": {"fairmind.version": "0.1.0", "ci.job_url": "https://gitlab.example.com/g/p/-/jobs/42"},
        "notices": ["warning: something to read"],
    }


def history(n: int, **kwargs: Any) -> list[dict[str, Any]]:
    return [
        document(started=T0 - timedelta(days=n - i), session_id=f"s{i}", ratio=0.75 + 0.01 * i, **kwargs)
        for i in range(n)
    ]


class Tags(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG, parsed as XML (so each one is well-formed)."""
    return [ET.fromstring(m) for m in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def charts(page: str, kind: str) -> list[ET.Element]:
    return [s for s in svgs(page) if kind in (s.get("class") or "").split()]


@pytest.fixture
def page() -> str:
    return render_html(document(), history=history(5))


def test_page_is_self_contained(page: str) -> None:
    found = tags(page)
    assert not [t for t, _ in found if t in ("script", "link", "img", "iframe", "object", "embed", "base")]
    assert not [a for _, attrs in found for a in attrs if a == "src" or a.startswith("on")]
    hrefs = [attrs["href"] for _, attrs in found if attrs.get("href")]
    external = {h for h in hrefs if h and not h.startswith("#")}
    assert external == {"https://gitlab.example.com/g/p/-/jobs/42", "https://mlflow.example.com/#/runs/1"}
    assert "url(" not in page
    assert "@import" not in page


def test_session_header(page: str) -> None:
    assert "<title>Fairness report: credit</title>" in page
    assert "4f2a9c1e0b7d on main (uncommitted changes)" in page
    assert '<a class="ci-link" href="https://gitlab.example.com/g/p/-/jobs/42">' in page
    assert "2026-03-01 09:00:00 UTC (9.0 s)" in page
    assert "pytest-fairmind 0.1.0" in page
    assert "mlflow: ok" in page


def test_verdicts_and_gates_with_value_interval_and_outcome(page: str) -> None:
    assert re.search(r'<section class="model" id="m0" data-model="credit.v2" data-verdict="fail">', page)
    assert re.search(r'<section class="model" id="m1" data-model="oracle" data-verdict="pass">', page)
    rows = re.findall(r'<tr class="gate (\w+)" data-outcome="\w+">(.*?)</tr>', page, flags=re.S)
    by_key = {re.findall(r"<code>(.*?)</code>", r)[1]: (o, r) for o, r in rows}
    outcome, row = by_key["sex/demographic_parity_ratio"]
    assert outcome == "fail"
    assert 'title="0.53">0.5300<' in row  # four decimals, the exact value as a tooltip
    assert "[0.4800, 0.5800]" in row
    assert ">0.001<" in row and ">0.025<" in row  # p-value and the adjusted level
    outcome, row = by_key["sex/equalized_odds_difference"]
    assert outcome == "inconclusive"
    assert "[0.0600, 0.1200]" in row  # no interval on the gate: the one recorded beside the metric
    assert by_key["perf/accuracy"][0] == "pass"  # an old entry (no outcome): from passed
    assert "typo_ratio &gt;= 0.8" in page
    assert "warning: something to read" in page


def test_a_rounded_value_never_sits_on_its_bound() -> None:
    doc = document(ratio=0.79999)
    page = render_html(doc)
    assert 'title="0.79999">0.79999<' in page
    doc = document(ratio=0.8000001)
    assert 'title="0.8000001">0.8000001<' in render_html(doc)
    doc = document(ratio=0.81234)
    assert 'title="0.81234">0.8123<' in render_html(doc)


def test_user_text_is_escaped_everywhere() -> None:
    evil = "<script>alert(1)</script>"
    doc = document(name=evil)
    model = doc["models"][evil]
    model["groups"]["sex"][0]["group"] = {"sex": '<img src=x onerror="alert(2)">'}
    model["tags"] = {"team": "</table><script>alert(3)</script>"}
    model["gates"][0]["expr"] = "<b>ratio</b> >= 0.8"
    doc["context"]["ci.job_url"] = "javascript:alert(4)"
    doc["notices"] = ["<iframe src=//evil>"]
    page = render_html(doc, history=history(2, name=evil))
    assert "<script" not in page
    assert "<img" not in page and "<iframe" not in page and "<b>" not in page
    assert "javascript:" not in page.replace("javascript:alert(4)", "")  # shown nowhere as a link
    assert not [a for t, a in tags(page) if t == "a" and (a.get("href") or "").startswith("javascript")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page
    for svg in svgs(page):  # still well-formed, labels are text
        assert svg.tag == f"{SVG_NS}svg"
    assert [t for t, _ in tags(page) if t == "script"] == []


def test_one_bar_chart_per_rate_column_and_scope(page: str) -> None:
    bars = charts(page, "bar-chart")
    assert sorted((s.get("data-scope"), s.get("data-column")) for s in bars) == sorted(
        (scope, column)
        for scope in ("sex", "sex.age")
        for column in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
    )
    for svg in bars:
        rows = [g for g in svg.iter(f"{SVG_NS}g") if "bar-row" in (g.get("class") or "")]
        assert len(rows) == (2 if svg.get("data-scope") == "sex" else 4)
        counts = [t.text for g in rows for t in g.iter(f"{SVG_NS}text") if "count" in (t.get("class") or "")]
        assert all(c and c.startswith("n=") for c in counts)


def test_interval_whiskers_where_rows_have_ci(page: str) -> None:
    bars = {(s.get("data-scope"), s.get("data-column")): s for s in charts(page, "bar-chart")}

    def whiskers(scope: str, column: str) -> int:
        return sum("whisker" in (p.get("class") or "") for p in bars[(scope, column)].iter(f"{SVG_NS}path"))

    assert whiskers("sex", "selection_rate") == 2
    assert whiskers("sex", "accuracy") == 2
    assert whiskers("sex", "true_positive_rate") == 0
    assert whiskers("sex.age", "selection_rate") == 0


def test_undefined_and_small_groups_are_marked(page: str) -> None:
    tpr = next(
        s for s in charts(page, "bar-chart")
        if s.get("data-scope") == "sex.age" and s.get("data-column") == "true_positive_rate"
    )  # fmt: skip
    rows = [g for g in tpr.iter(f"{SVG_NS}g") if "bar-row" in (g.get("class") or "")]
    undefined = [g for g in rows if "undefined" in (g.get("class") or "").split()]
    assert [g.get("data-group") for g in undefined] == ["sex=male, age=<25"]
    assert "undefined" in [t.text for t in undefined[0].iter(f"{SVG_NS}text")]
    assert not [r for r in undefined[0].iter(f"{SVG_NS}rect") if "bar" in (r.get("class") or "").split()]
    small = [g for g in rows if "small" in (g.get("class") or "").split()]
    assert [g.get("data-group") for g in small] == ["sex=male, age=<25"]
    assert "1 undefined" in page


def test_crossed_group_labels_are_readable() -> None:
    assert group_label_lines({"sex": "female", "age": "25-60"}) == ("female · 25-60",)
    long = {"race": "Asian-Pac-Islander", "native_country": "Trinadad&Tobago", "sex": "female"}
    lines = group_label_lines(long)
    assert lines == ("Asian-Pac-Islander", "Trinadad&Tobago", "female")  # one value a line
    very_long = group_label_lines({"x": "y" * 80})
    assert len(very_long[0]) <= 34 and very_long[0].endswith("…")
    chart = bar_chart("selection_rate", [{"group": long, "count": 40, "selection_rate": 0.5}])
    assert chart.bars[0].height > bar_chart("selection_rate", crossed_rows()).bars[0].height
    assert chart.bars[0].full_label == "race=Asian-Pac-Islander, native_country=Trinadad&Tobago, sex=female"


def test_bar_geometry_is_proportional_to_values() -> None:
    chart = bar_chart("selection_rate", sex_rows())
    female, male = chart.bars
    assert female.bar_x == male.bar_x == chart.zero_x == chart.plot_left
    assert female.bar_width == pytest.approx(0.32 * chart.plot_width)
    assert male.bar_width == pytest.approx(0.60 * chart.plot_width)
    assert female.whisker == pytest.approx((chart.plot_left + 0.29 * 300, chart.plot_left + 0.35 * 300))
    negative = bar_chart("r2_score", [{"group": {"g": "a"}, "count": 50, "r2_score": -0.5},
                                      {"group": {"g": "b"}, "count": 50, "r2_score": 1.5}])  # fmt: skip
    a, b = negative.bars
    assert a.bar_x + a.bar_width == pytest.approx(negative.zero_x)  # a negative bar ends at zero
    assert b.bar_x == pytest.approx(negative.zero_x)
    assert b.bar_width == pytest.approx(3 * a.bar_width)


def test_impact_ratio_table() -> None:
    page = build_page(document())
    scope = next(s for s in page.models[0].scopes if s.name == "sex.age")
    assert scope.impact is not None
    rows = {r.label: r for r in scope.impact.rows}
    assert rows["female · <25"].ratio == "0.500"  # 0.30 / 0.60
    assert rows["female · <25"].below
    assert rows["male · 25-60"].reference and rows["male · 25-60"].ratio == "1.000"
    assert not rows["male · <25"].below  # 0.55 / 0.60 = 0.917
    assert rows["male · <25"].small  # 12 rows
    assert not rows["female · 25-60"].small
    assert scope.impact.lowest == "Lowest impact ratio 0.500 (sex=female, age=<25), under 0.8."
    html = render_html(document())
    assert html.count('class="flag below"') == 3  # 0.30/0.60, 0.33/0.60, 0.32/0.60
    assert "small group (n &lt; 30)" in html


def test_impact_ratio_uses_the_rows_own_value_and_is_undefined_without_a_selected_group() -> None:
    doc = document()
    rows = doc["models"]["credit.v2"]["groups"]["sex"]
    rows[0]["impact_ratio"] = 0.7  # what assess computed (among the groups that entered aggregates)
    rows[1]["impact_ratio"] = 1.0
    scope = next(s for s in build_page(doc).models[0].scopes if s.name == "sex")
    assert scope.impact is not None
    assert [r.ratio for r in scope.impact.rows] == ["0.700", "1.000"]
    assert not [c for c in scope.charts if c.column == "impact_ratio"]
    for row in rows:
        row.pop("impact_ratio")
        row["selection_rate"] = 0.0
    scope = next(s for s in build_page(doc).models[0].scopes if s.name == "sex")
    assert scope.impact is not None
    assert all(r.undefined for r in scope.impact.rows)
    assert scope.impact.lowest.startswith("No impact ratio is defined")


def test_regression_and_multiclass_tables() -> None:
    doc = document()
    groups = doc["models"]["credit.v2"]["groups"]
    groups["reg"] = [
        {"group": {"sex": "f"}, "count": 100, "mean_absolute_error": 1.5, "r2_score": None},
        {"group": {"sex": "m"}, "count": 90, "mean_absolute_error": 2.0, "r2_score": 0.4},
    ]
    groups["mc"] = [
        {"group": {"sex": "f"}, "class": "cat", "count": 10, "recall": 0.5},
        {"group": {"sex": "f"}, "class": "dog", "count": 12, "recall": 0.7},
    ]
    scopes = {s.name: s for s in build_page(doc).models[0].scopes}
    assert [c.column for c in scopes["reg"].charts] == ["mean_absolute_error", "r2_score"]
    assert scopes["reg"].impact is None  # no selection rate: no impact ratio
    assert scopes["mc"].charts == [] and scopes["mc"].impact is None
    assert scopes["mc"].columns == ["group", "class", "count", "recall"]
    assert scopes["mc"].table[1] == ["sex=f", "dog", "12", "0.7000"]
    render_html(doc)


def test_baseline_changes_list_the_regression_rules(page: str) -> None:
    section = re.search(r'<section class="baseline">(.*?)</section>', page, flags=re.S)
    assert section is not None
    body = section.group(1)
    assert "sex/demographic_parity_difference" in body
    assert ">0.2<" in body and ">0.28<" in body and "+0.08" in body
    assert "&lt;= 0.22 (baseline 0.2, tolerance 0.02, lower is better)" in body
    assert "demographic_parity_ratio" not in body  # a bound gate is not a baseline change
    doc = document()
    for m in doc["models"].values():
        m["gates"] = [g for g in m["gates"] if g.get("rule") != "regression"]
    assert '<section class="baseline">' not in render_html(doc)


def test_empty_history_gives_a_note() -> None:
    page = render_html(document())
    assert "No trends: the history holds no earlier session" in page
    assert charts(page, "trend-chart") == []


def test_history_of_other_projects_is_ignored_with_a_note() -> None:
    page = render_html(document(), history=history(3, project="another"))
    assert "no earlier session of project &#39;credit&#39; (3 other entries ignored)" in page
    assert charts(page, "trend-chart") == []


def test_one_trend_per_gated_metric_with_sessions_in_time_order_and_the_bound() -> None:
    earlier = history(6)
    shuffled = [earlier[3], earlier[0], earlier[5], earlier[1], earlier[4], earlier[2]]
    current = document()
    later = document(started=T0 + timedelta(days=1), session_id="later")
    page_doc = build_page(current, [*shuffled, copy.deepcopy(current), later])
    assert page_doc.history_sessions == 6  # the session itself and a later one are left out
    (group, oracle) = page_doc.trends
    keys = [chart.key for _, chart in group.charts]
    assert keys == [
        "sex/demographic_parity_ratio",
        "sex/equalized_odds_difference",
        "sex/demographic_parity_difference",
    ]
    chart = group.charts[0][1]
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs) and len(xs) == 7
    assert [p.current for p in chart.points] == [False] * 6 + [True]
    ys = [p.y for p in chart.points]  # values 0.75, 0.76, ... then 0.53: higher value, smaller y
    assert ys[:6] == sorted(ys[:6], reverse=True)
    assert [p.outcome for p in chart.points] == ["fail"] * 5 + ["pass", "fail"]  # 0.80 passes >= 0.8
    (bound,) = chart.bounds
    assert bound.label == ">= 0.8"
    assert ys[5] == pytest.approx(bound.y)  # the 0.80 session sits on the bound line
    regression = group.charts[2][1]
    assert [b.kind for b in regression.bounds] == ["regression"]
    assert regression.bounds[0].short_label == "limit 0.220"
    assert [chart.key for _, chart in oracle.charts] == ["perf/accuracy"]
    page = render_html(current, history=shuffled)
    trends = charts(page, "trend-chart")
    assert [(s.get("data-model"), s.get("data-key")) for s in trends] == [("credit.v2", k) for k in keys] + [
        ("oracle", "perf/accuracy")
    ]
    first = trends[0]
    circles = [c for c in first.iter(f"{SVG_NS}circle") if "point" in (c.get("class") or "")]
    assert len(circles) == 7
    assert sum("current" in (c.get("class") or "") for c in circles) == 1
    assert [line for line in first.iter(f"{SVG_NS}line") if "bound" in (line.get("class") or "").split()]
    assert 'href="#m0-t0"' in page  # each gate row links to its trend


def test_trend_marks_undefined_values_and_skips_sessions_without_the_metric() -> None:
    earlier = history(4)
    earlier[1]["models"]["credit.v2"]["metrics"]["sex/demographic_parity_ratio"] = None
    del earlier[2]["models"]["credit.v2"]["metrics"]["sex/demographic_parity_ratio"]
    del earlier[3]["models"]["credit.v2"]
    chart = build_page(document(), earlier).trends[0].charts[0][1]
    assert [p.undefined for p in chart.points] == [False, True, False]
    assert len(chart.paths) == 0  # the undefined value breaks the line into single points
    page = render_html(document(), history=earlier)
    assert 'class="point-na"' in page


def test_verdict_words_of_every_kind() -> None:
    doc = document()
    doc["models"]["credit.v2"]["verdict"] = "interrupted"
    doc["models"]["oracle"]["verdict"] = "inconclusive"
    page = render_html(doc)
    assert 'data-model="credit.v2" data-verdict="interrupted"' in page
    assert 'data-model="oracle" data-verdict="inconclusive"' in page
    doc["models"]["oracle"]["verdict"] = "<odd>"
    assert 'data-model="oracle" data-verdict="unknown"' in render_html(doc)


def test_a_session_without_models_renders() -> None:
    doc = document()
    doc["models"] = {}
    doc["providers"] = {}
    page = render_html(doc, history=history(2))
    assert "This session recorded no model." in page


def test_without_jinja2_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.raises(ImportError, match=r"pytest-fairmind\[html\]"):
        render_html(document())


def test_importing_the_package_does_not_import_jinja2() -> None:
    code = "import sys, pytest_fairmind.html, pytest_fairmind.junit; print('jinja2' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


@given(
    low=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    span=st.floats(min_value=1e-6, max_value=1e6, allow_nan=False),
    count=st.integers(min_value=2, max_value=8),
)
def test_nice_ticks_lie_in_the_range_in_order(low: float, span: float, count: int) -> None:
    high = low + span
    ticks = nice_ticks(low, high, count)
    assert len(ticks) >= 2
    assert ticks == sorted(ticks)
    tolerance = span * 1e-6
    assert all(low - tolerance <= t <= high + tolerance for t in ticks)


# --------------------------------------------------------------------------- scans, evidence, tasks


def real_scan_entry() -> dict[str, Any]:
    """A scan entry as ``fairmind.scan`` records it (women selected less often)."""
    import numpy as np

    from pytest_fairmind.subgroup_scan import scan

    rng = np.random.default_rng(3)
    n = 3000
    features = {"sex": rng.choice(["female", "male"], n), "age": rng.choice(["<25", "25-60", ">60"], n)}
    y_pred = (rng.random(n) < np.where(features["sex"] == "female", 0.3, 0.5)).astype(int)
    entry: dict[str, Any] = scan(rng.integers(0, 2, n), y_pred, features=features, top=6).report_entry()
    return entry


def test_scan_table_holds_the_top_rows_as_recorded() -> None:
    doc = document()
    entry = real_scan_entry()
    doc["models"]["credit.v2"]["scans"] = {"scan": entry}
    page = render_html(doc)
    section = re.search(
        r'<div class="scan" data-scope="scan" data-metric="selection_rate">(.*?)</div>', page, re.S
    )
    assert section is not None
    body = section.group(1)
    assert f"{entry['subgroups_tested']} subgroups tested" in body
    rows = re.findall(r'<tr class="scan-row( significant)?">(.*?)</tr>', body, re.S)
    assert len(rows) == len(entry["rows"]) > 0
    for (flag, cells), row in zip(rows, entry["rows"], strict=True):
        texts = re.findall(r"<td[^>]*>(.*?)</td>", cells, re.S)
        label = ", ".join(f"{k}={v}" for k, v in row["conditions"].items())
        assert texts[0] == label.replace("<", "&lt;").replace(">", "&gt;")
        assert texts[1] == str(row["count"])
        assert texts[2] == f"{row['value']:.4f}"
        assert texts[4] == f"{row['ratio']:.3f}"
        assert texts[6] == f"{row['p_value']:.4g}"
        assert bool(flag) == row["significant"]
    assert any(row["significant"] for row in entry["rows"])


def test_a_scan_with_undefined_values_and_no_rows_renders() -> None:
    doc = document()
    doc["models"]["credit.v2"]["scans"] = {
        "s1": {"metric": "true_positive_rate", "subgroups_tested": 3, "rows": [
            {"conditions": {"sex": "<b>x</b>"}, "count": 40, "value": None, "complement_value": 0.5,
             "ratio": None, "difference": None, "p_value": None, "q_value": None, "significant": False}]},
        "s2": {"metric": "accuracy", "subgroups_tested": 0, "rows": []},
    }  # fmt: skip
    page = render_html(doc)
    assert "sex=&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert page.count(">undefined<") >= 5  # value, ratio, difference, p, q
    assert "No subgroup had enough rows to be tested." in page


def test_evidence_column_says_which_gates_were_decided_on_intervals() -> None:
    doc = document()
    gates = doc["models"]["credit.v2"]["gates"]
    gates[0].update(evidence="interval", p_adjusted=0.003)
    gates[1].update(evidence="point")
    page = render_html(doc)
    table = re.search(r'<section class="model" id="m0".*?<table class="gates">(.*?)</table>', page, re.S)
    assert table is not None
    assert "<th>decided on</th>" in table.group(1)
    assert '<td class="evidence">interval</td>' in table.group(1)
    assert '<td class="evidence">point <span class="flag na"' in table.group(1)
    assert 'title="adjusted p 0.003">0.001<' in table.group(1)
    oracle = re.search(r'id="m1".*?<table class="gates">(.*?)</table>', page, re.S)
    assert oracle is not None and "decided on" not in oracle.group(1)  # no interval gate there


def test_group_columns_come_from_the_rows_for_scores() -> None:
    doc = document()
    doc["models"]["credit.v2"]["groups"] = {
        "sex": [
            {"group": {"sex": "f"}, "count": 400, "roc_auc": 0.81, "average_precision": 0.7,
             "brier_score": 0.18, "bpsn_auc": None},
            {"group": {"sex": "m"}, "count": 380, "roc_auc": 0.86, "average_precision": 0.75,
             "brier_score": 0.15, "bpsn_auc": 0.8},
        ]
    }  # fmt: skip
    (scope,) = build_page(doc).models[0].scopes
    assert [c.column for c in scope.charts] == ["roc_auc", "average_precision", "brier_score", "bpsn_auc"]
    assert scope.impact is None  # no selection rate, no impact-ratio table
    assert scope.charts[3].undefined == 1


# --------------------------------------------------------------------------- files and the command


def _save(folder: Any, docs: list[dict[str, Any]]) -> list[Any]:
    from pytest_fairmind import history, report

    return [history.save(folder, report.session_from_dict(d)) for d in docs]


def test_write_html_takes_trends_from_the_history_folder(tmp_path: Any) -> None:
    from pytest_fairmind import report
    from pytest_fairmind.html import write_html
    from pytest_fairmind.result import GateResult

    folder = tmp_path / ".fairmind"
    _save(folder, history(4))
    (folder / "sessions" / "20260101-broken.json").write_text("{not json", encoding="utf-8")
    result = report.session_from_dict(document())
    gate = result.models["credit.v2"].gates[0]
    result.models["credit.v2"].gates[0] = GateResult(
        **{**gate.__dict__, "evidence": "interval", "ci_low": 0.49, "ci_high": 0.57, "p_value": 0.0004,
           "p_adjusted": 0.0012, "alpha": 0.0125}
    )  # fmt: skip
    out = tmp_path / "out" / "report.html"
    write_html(out, result, folder)
    page = out.read_text(encoding="utf-8")
    assert len(charts(page, "trend-chart")) == 4  # 3 gated keys of credit.v2, 1 of oracle
    assert "4 earlier sessions" in page
    assert "[0.4900, 0.5700]" in page and ">0.0004<" in page and ">0.0125<" in page
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left
    write_html(tmp_path / "alone.html", result, None)
    assert "No trends" in (tmp_path / "alone.html").read_text(encoding="utf-8")


def test_read_document_refuses_what_is_not_a_report(tmp_path: Any) -> None:
    from pytest_fairmind import report
    from pytest_fairmind.html import history_documents, read_document

    cases = {
        "nan.json": b'{"schema": "pytest-fairmind/1", "x": NaN}',
        "latin.json": b"\xff\xfe\x00",
        "list.json": b"[]",
        "other.json": b'{"schema": "something-else/2"}',
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(report.ReportError):
            read_document(path)
    with pytest.raises(OSError):
        read_document(tmp_path / "missing.json")
    assert history_documents(None) == ([], [])
    assert history_documents(tmp_path / "nothing-here") == ([], [])


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(models=[]),
        lambda d: d["models"]["credit.v2"].update(metrics=[1, 2]),
        lambda d: d["models"]["credit.v2"].update(gates=["x"]),
        lambda d: d["session"].update(started=None),
    ],
)
def test_a_history_entry_of_the_wrong_shape_is_skipped(tmp_path: Any, damage: Any) -> None:
    import json

    from pytest_fairmind.html import history_documents

    (good,) = _save(tmp_path, history(1))
    bad = copy.deepcopy(document(session_id="bad"))
    damage(bad)
    broken = good.parent / "20250101000000-bad.json"
    broken.write_text(json.dumps(bad), encoding="utf-8")
    docs, skipped = history_documents(tmp_path)
    assert [d["session"]["id"] for d in docs] == ["s0"]
    assert [path for path, _ in skipped] == [broken]
    render_html(document(), history=docs)


def _run_report(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    from pytest_fairmind.html.command import report_command

    code = report_command(*args)
    return code, capsys.readouterr().err


@pytest.fixture
def project(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("FAIRMIND_HISTORY", "FAIRMIND_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # no ini of a parent folder
    return tmp_path


def test_report_command_last_uses_the_newest_entry_and_its_folder(
    project: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _save(project / ".fairmind", [*history(3), document()])
    code, err = _run_report(capsys, "last", "page.html", None, str(project))
    assert (code, err) == (0, "")
    page = (project / "page.html").read_text(encoding="utf-8")
    assert "<code>current</code>" in page  # the newest session is the page's
    assert "3 earlier sessions" in page


def test_report_command_on_a_file_with_another_history_folder(
    project: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    _save(project / "hist", history(2))
    (project / "report.json").write_text(json.dumps(document()), encoding="utf-8")
    code, _ = _run_report(capsys, "report.json", "out/page.html", "hist", str(project))
    assert code == 0
    assert "2 earlier sessions" in (project / "out" / "page.html").read_text(encoding="utf-8")


def test_report_command_empty_history_gives_a_note(project: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    (project / "report.json").write_text(json.dumps(document()), encoding="utf-8")
    code, _ = _run_report(capsys, "report.json", "page.html", None, str(project))
    assert code == 0
    assert "No trends: the history holds no earlier session" in (project / "page.html").read_text("utf-8")


def test_report_command_exit_2_for_unreadable_files(project: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "bad.json").write_text("{", encoding="utf-8")
    code, err = _run_report(capsys, "bad.json", "page.html", None, str(project))
    assert code == 2 and "bad.json: cannot read the session" in err
    assert not (project / "page.html").exists()
    code, err = _run_report(capsys, "missing.json", "page.html", None, str(project))
    assert code == 2 and "missing.json" in err
    code, err = _run_report(capsys, "last", "page.html", None, str(project))
    assert code == 2 and "no session in the history folder" in err
    # a corrupt history entry: left out of the trends, the page written, exit 2
    (entry,) = _save(project / ".fairmind", [document()])
    (entry.parent / "20250101000000-corrupt.json").write_text("[]", encoding="utf-8")
    code, err = _run_report(capsys, str(entry), "page.html", None, str(project))
    assert code == 2 and "corrupt.json" in err and "left out of the trends" in err
    assert (project / "page.html").is_file()


def test_header_shows_the_gate_policy_the_session_ran_with() -> None:
    doc = document()
    doc["settings"] = {"evidence": "interval", "inconclusive": "fail", "multiple_testing": "holm", "ci": 0.95,
                       "gate_action": "fail", "strict": True}  # fmt: skip
    page = render_html(doc)
    policy = re.search(r'<dd class="policy">(.*?)</dd>', page)
    assert policy is not None
    assert policy.group(1) == (
        "evidence interval, multiple testing holm, family level 0.95, inconclusive: fail, "
        "gate action fail, strict on"
    )
    assert 'class="policy"' not in render_html(document())  # reports from before settings were kept


def test_a_one_sided_gate_interval_shows_its_open_end() -> None:
    doc = document()
    first, second = doc["models"]["credit.v2"]["gates"][:2]
    first.pop("ci_high")  # a ">=" gate: the one-sided interval is [low, inf)
    second.update(ci_high=0.12)  # a "<=" gate: (-inf, high]
    views = build_page(doc).models[0].gates
    assert views[0].interval_text == f"[{first['ci_low']:.4f}, inf]"
    assert views[1].interval_text == "[-inf, 0.1200]"
