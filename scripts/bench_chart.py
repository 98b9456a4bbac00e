#!/usr/bin/env python3
"""The I/O-path benchmark's JSON (turn_throughput) → an SVG chart and the docs section.

    python3 scripts/bench_chart.py RESULTS.json CHART.svg [--doc docs/performance.md] [--section OUT.md]

Plain standard library. The chart: horizontal bars (medians) with min–max whiskers, one panel for
frames/s of the big turn and one for time to ready; the emitter's ceiling and the INVALID line
(its fraction `valid_fraction`) are drawn when they fit, and stated otherwise. `--doc` rewrites
the text between `<!-- bench:io:start -->` and `<!-- bench:io:end -->` in that file; `--section`
writes the same text to a file of its own (for a smoke run that must not touch docs/).
"""

import argparse
import json
import os
import sys
from xml.sax.saxutils import escape

START = "<!-- bench:io:start -->"
END = "<!-- bench:io:end -->"

LABELS = {
    "ceiling": "emitter ceiling (count newlines)",
    "floor": "floor (read + serde_json Value)",
    "ours": "ours: claude-session",
    "python-sdk": "Python claude-agent-sdk",
    "rust-sdk": "Rust claude-agent-sdk-rs",
}
COLOURS = {
    "ceiling": "#9e9e9e",
    "floor": "#5b8def",
    "ours": "#e8743b",
    "python-sdk": "#3c9d5d",
    "rust-sdk": "#8d5bd1",
}


def fmt_int(x):
    return f"{x:,.0f}"


def fmt_ms(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def nice_max(x):
    """The smallest 1/2/2.5/5 × 10^k at or above x."""
    if x <= 0:
        return 1.0
    k = 1.0
    while k * 10 <= x:
        k *= 10
    while k > x:
        k /= 10
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * k >= x:
            return m * k
    return 10 * k


def panel(rows, key, title, unit_fmt, y0, width, extra_lines=()):
    """One panel: returns (svg fragments, height)."""
    label_w, right_pad, bar_h, gap = 250, 120, 18, 10
    plot_w = width - label_w - right_pad
    values = [r[key]["max"] for r in rows if r.get(key)]
    extra = [v for v, _, _ in extra_lines]
    top = nice_max(max(values + [v for v in extra if v <= 1.6 * max(values or [1])] or [1]))
    x = lambda v: label_w + plot_w * min(v, top) / top  # noqa: E731
    out = [f'<text x="10" y="{y0 + 16}" class="title">{escape(title)}</text>']
    y = y0 + 30
    axis_top = y
    for r in rows:
        cy = y + bar_h / 2
        out.append(f'<text x="{label_w - 8}" y="{cy + 4}" class="label" text-anchor="end">'
                   f'{escape(LABELS.get(r["id"], r["id"]))}</text>')
        s = r.get(key)
        if not s:
            why = r["status"] if r["status"] != "ok" else "not measured"
            out.append(f'<text x="{label_w + 4}" y="{cy + 4}" class="missing">{escape(why)}</text>')
        else:
            colour = COLOURS.get(r["id"], "#777")
            invalid = key == "frames_per_s" and not r["valid"]
            out.append(f'<rect x="{label_w}" y="{y}" width="{x(s["median"]) - label_w:.1f}" '
                       f'height="{bar_h}" fill="{colour}"'
                       + (' fill-opacity="0.35" stroke="#c00" stroke-dasharray="3 2"' if invalid else "")
                       + "/>")
            x1, x2 = x(s["min"]), x(s["max"])
            out.append(f'<line x1="{x1:.1f}" y1="{cy}" x2="{x2:.1f}" y2="{cy}" class="whisker"/>')
            for xx in (x1, x2):
                out.append(f'<line x1="{xx:.1f}" y1="{cy - 5}" x2="{xx:.1f}" y2="{cy + 5}" class="whisker"/>')
            text = unit_fmt(s["median"]) + (" INVALID" if invalid else "")
            out.append(f'<text x="{max(x2, x(s["median"])) + 6:.1f}" y="{cy + 4}" class="value">{escape(text)}</text>')
        y += bar_h + gap
    axis_bottom = y - gap + 4
    out.append(f'<line x1="{label_w}" y1="{axis_top - 4}" x2="{label_w}" y2="{axis_bottom}" class="axis"/>')
    for i in range(6):
        v = top * i / 5
        xx = x(v)
        out.append(f'<line x1="{xx:.1f}" y1="{axis_bottom}" x2="{xx:.1f}" y2="{axis_bottom + 4}" class="axis"/>')
        out.append(f'<text x="{xx:.1f}" y="{axis_bottom + 16}" class="tick" text-anchor="middle">{escape(unit_fmt(v))}</text>')
    notes = []
    for v, label, style in extra_lines:
        if v <= top:
            out.append(f'<line x1="{x(v):.1f}" y1="{axis_top - 6}" x2="{x(v):.1f}" y2="{axis_bottom}" class="{style}"/>')
            kind = "dashed grey line" if style == "ceiling" else "dotted red line"
            notes.append(f"{label} ({kind})")
        else:
            notes.append(f"{label} (off the scale)")
    y = axis_bottom + 30
    for n in notes:
        out.append(f'<text x="{label_w}" y="{y}" class="note">{escape(n)}</text>')
        y += 14
    return out, y - y0


def chart(doc):
    width = 860
    rows = doc["contenders"]
    ceiling = doc["ceiling_frames_per_s"]
    frac = doc["valid_fraction"]
    peers = [r for r in rows if r["id"] != "ceiling"]
    fps_rows = [r for r in rows if r["id"] != "ceiling"]
    lines = [
        (ceiling, f"emitter ceiling {fmt_int(ceiling)}/s", "ceiling"),
        (frac * ceiling, f"INVALID at ≥ {frac} × ceiling = {fmt_int(frac * ceiling)}/s", "invalid"),
    ]
    turn = doc["turn"]
    p1, h1 = panel(fps_rows, "frames_per_s",
                   f"Frames/s, one {fmt_int(turn['frames'])}-frame turn (median; whiskers min–max)",
                   fmt_int, 40, width, lines)
    p2, h2 = panel(peers, "ready_ms", "Time to ready, ms: spawn → initialize answered (median; whiskers min–max)",
                   fmt_ms, 40 + h1 + 10, width)
    height = 40 + h1 + 10 + h2 + 30
    m = doc["machine"]
    head = (f"{doc['rounds']} rounds interleaved · {m['nproc']} cores, {m['cpu']} · "
            f"kernel {m['kernel']} · {doc['date']}" + (" · QUICK" if doc.get("quick") else ""))
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        "<style>.title{font-size:14px;font-weight:bold}.label{font-size:12px}.value{font-size:11px}"
        ".tick{font-size:10px;fill:#555}.note{font-size:10px;fill:#555}.missing{font-size:12px;fill:#c00;font-style:italic}"
        ".axis{stroke:#999;stroke-width:1}.whisker{stroke:#222;stroke-width:1.2}"
        ".ceiling{stroke:#555;stroke-dasharray:5 3}.invalid{stroke:#c00;stroke-dasharray:2 3}</style>",
        f'<rect width="{width}" height="{height:.0f}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">A session\'s I/O path: '
        f'fake-claude replay → reader, same emitter and turn for all</text>',
        f'<text x="10" y="34" class="note">{escape(head)}</text>',
    ] + p1 + p2 + [
        f'<text x="10" y="{height - 10:.0f}" class="note">{escape("generated by scripts/bench_chart.py from docs/perf/io.json (just bench)")}</text>',
        "</svg>",
    ]
    return "\n".join(svg) + "\n"


def stat(s, f):
    if not s:
        return "—"
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def section(doc, chart_rel):
    rows = doc["contenders"]
    by = {r["id"]: r for r in rows}
    ratios = doc["ratios"]
    floor = by["floor"]["frames_per_s"]["median"] if by["floor"]["valid"] else None
    v = doc["versions"]
    m = doc["machine"]
    t = doc["turn"]

    def ratio(x):
        return f"**{x:.2f}**" if isinstance(x, (int, float)) else "— (a side did not give a valid figure)"

    out = [
        "",
        "<!-- Generated by scripts/bench_chart.py from docs/perf/io.json: edit those, not this. -->",
        "",
        f"One turn of {fmt_int(t['frames'])} frames ({t['bytes'] / 1e6:.1f} MB; `stream_event`/`assistant` "
        f"lines, mean {t['mean_line_bytes']} bytes: the {fmt_int(t['sized_lines'])} text deltas and assistant lines "
        f"{t['sized_line_bytes_min']}–{t['sized_line_bytes_max']} bytes, the block and message start/stop frames "
        f"at their recorded size, all but init and result {t['body_line_bytes_min']}–{t['body_line_bytes_max']}; "
        "built from the recorded `2.1.329/partial.jsonl` with ids rewritten, ending in a `result`), "
        "emitted by fake-claude's replay mode (`FAKE_CLAUDE_REPLAY`: the pre-built turn in one "
        "`write_all` per user line) to every contender, interleaved round by round in one run "
        f"({doc['rounds']} rounds, the first contender rotating; the in-process contenders — ceiling, "
        "floor, ours — each run as a task on the same 2-worker Tokio runtime, as a service's handlers "
        "do; the peers are processes of their own). Frames/s is query sent → `result` "
        f"read; time to ready is spawn → `initialize` answered (against a {t['ready_turn_frames']}-frame turn, so reading "
        "the big file is never timed). The emitter's ceiling is measured in the same run by a reader "
        "that only counts newlines; a figure at or above "
        f"{doc['valid_fraction']} of it would be marked INVALID (the emitter, not the reader, the limit).",
        "",
        f"![frames/s and time to ready per contender]({chart_rel})",
        "",
        "| contender | frames/s, median (min–max) | vs floor | time to ready, ms, median (min–max) | status |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        fps = r.get("frames_per_s")
        if r["status"] != "ok":
            status = f"**{r['status'].upper()}**: {r['reason']}"
        elif not r["valid"]:
            status = "**INVALID**: " + "; ".join(r["invalid_because"])
        elif r["id"] == "ceiling":
            status = "the emitter's limit"
        else:
            status = f"valid ({r['ceiling_fraction']:.2f} of the ceiling)"
        vs = f"{fps['median'] / floor:.2f}" if (fps and floor and r["id"] != "ceiling") else "—"
        name = r["name"] + (f" {r['version']}" if r.get("version") and r["id"] in ("python-sdk", "rust-sdk") else "")
        out.append(f"| {name} | {stat(fps, fmt_int)} | {vs} | {stat(r.get('ready_ms'), fmt_ms)} | {status} |")
    notes = [f"{LABELS.get(r['id'], r['id'])}: {r['notes']}" for r in rows if r.get("notes")]
    if notes:
        out += ["", "Peer set-up: " + "; ".join(notes) + "."]
    ins = doc.get("instructions")
    if ins and ins.get("status") == "ok":
        out += [
            "",
            f"Instructions per frame under callgrind ({ins['valgrind']}; `scripts/io_instructions.sh`: "
            f"this process only, the difference between a {ins['frames']['small']}-frame and a "
            f"{fmt_int(ins['frames']['big'])}-frame turn over the difference in frames, so start-up cancels out; "
            "the session's CLI is started by a plain launcher there, as valgrind lacks `pidfd_open`): "
            f"floor {fmt_int(ins['floor_per_frame'])}, ours {fmt_int(ins['ours_per_frame'])} "
            f"(**{ins['ours_over_floor']:.2f}** of the floor).",
        ]
    elif ins:
        out += ["", f"Instructions per frame under callgrind: **NOT RUN**: {ins.get('reason')}."]
    out += [
        "",
        f"Ratios of medians: ours/floor {ratio(ratios['ours_over_floor'])}, "
        f"ours/Python SDK {ratio(ratios['ours_over_python_sdk'])}, "
        f"ours/Rust SDK {ratio(ratios['ours_over_rust_sdk'])}.",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m.get('mem_gib')} GiB, kernel {m['kernel']}, "
        "shared with other builds while it ran (the contenders are interleaved so load hits them alike). "
        f"Date {doc['date']}{' (QUICK run)' if doc.get('quick') else ''}, commit {v.get('git')}. "
        f"Versions: {v.get('rustc')}; claude-session {v.get('claude_session')}; "
        f"Python SDK `claude-agent-sdk=={v.get('claude_agent_sdk_python') or 'not installed'}` on {v.get('python') or 'no Python'}; "
        f"Rust peer `claude-agent-sdk-rs =={v.get('claude_agent_sdk_rs') or '?'}`.",
        "",
        "Re-run: `just bench` (= `bash scripts/bench.sh`: builds fake-claude in release, makes the "
        "venv `target/bench-venv` with the pinned Python SDK, builds the Rust peer "
        "`benches/peers/rust-sdk` into `target/bench-peers`, runs "
        "`cargo bench -p claude-session --bench turn_throughput` and `scripts/io_instructions.sh` "
        "(valgrind from Debian's packages), writes `docs/perf/io.json`, "
        "`docs/perf/io.svg` and this section). `BENCH_QUICK=1` for a smoke run (fewer frames and "
        "rounds; writes under `target/bench-io/` and leaves docs/ alone). Peer drivers: "
        "`benches/peers/python_sdk.py` (`ClaudeSDKClient`, `cli_path` = fake-claude) and "
        "`benches/peers/rust-sdk` (`ClaudeClient`); a peer that cannot be installed or fails shows "
        "NOT RUN/FAILED here, never a figure.",
        "",
    ]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("chart")
    ap.add_argument("--doc")
    ap.add_argument("--section")
    a = ap.parse_args()
    with open(a.results) as f:
        doc = json.load(f)
    with open(a.chart, "w") as f:
        f.write(chart(doc))
    if a.doc:
        rel = os.path.relpath(a.chart, os.path.dirname(os.path.abspath(a.doc)))
        text = open(a.doc).read()
        if START not in text or END not in text:
            sys.exit(f"bench_chart.py: {a.doc} has no {START} … {END} markers")
        head, rest = text.split(START, 1)
        _, tail = rest.split(END, 1)
        with open(a.doc, "w") as f:
            f.write(head + START + "\n" + section(doc, rel) + END + tail)
    if a.section:
        rel = os.path.relpath(a.chart, os.path.dirname(os.path.abspath(a.section)))
        with open(a.section, "w") as f:
            f.write(section(doc, rel))


if __name__ == "__main__":
    main()
