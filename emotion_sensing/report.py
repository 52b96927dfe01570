"""Exports of a replayed conversation: CSV rows and a self-contained HTML report whose
timeline plots valence and the fused emotion per turn (inline SVG, no external files)."""
from __future__ import annotations

import csv
import html
import io
import json
import time
from typing import List

from emotion_sensing.replay import Turn

COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c",
           "sad": "#1f77b4", "surprise": "#ff7f0e", "neutral": "#7f7f7f", "unknown": "#cccccc"}
CSV_FIELDS = ["turn", "timestamp", "user", "intent", "emotion", "confidence", "valence", "arousal",
              "contributions", "sensing", "bot", "slots"]  # slots: the other slots set at the turn, as JSON


def to_csv(turns: List[Turn]) -> str:
    """One row per user turn."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for number, turn in enumerate(turns, 1):
        emotion = turn.emotion
        reading = emotion.get("reading") or {}
        writer.writerow({
            "turn": number,
            "timestamp": turn.timestamp,
            "user": turn.text,
            "intent": turn.intent,
            "emotion": emotion.get("label", ""),
            "confidence": emotion.get("confidence", ""),
            "valence": "" if emotion.get("valence") is None else emotion["valence"],
            "arousal": "" if emotion.get("arousal") is None else emotion["arousal"],
            "contributions": "; ".join(
                f"{c['modality']}:{c['label']}:{c['share']:.2f}" for c in reading.get("contributions", [])
            ),
            "sensing": reading.get("sensing", ""),
            "bot": " | ".join(r["text"] for r in turn.replies if r.get("text")),
            "slots": json.dumps(turn.slots, ensure_ascii=False, default=str) if turn.slots else "",
        })
    return out.getvalue()


def _timeline_svg(turns: List[Turn], width: int = 860, height: int = 240) -> str:
    left, right, top, bottom = 50, 20, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(turns), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(valence: float) -> float:
        return top + plot_h * (1 - (valence + 1) / 2)

    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="valence and emotion per turn">']
    for v in (-1, -0.5, 0, 0.5, 1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="{"#999" if v == 0 else "#e5e5e5"}"/>')
        parts.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:+.1f}</text>')
    points = [(i, t.emotion.get("valence")) for i, t in enumerate(turns)]
    known = [(i, v) for i, v in points if v is not None]
    if len(known) > 1:
        path = " ".join(f"{x(i):.1f},{y(float(v)):.1f}" for i, v in known)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#444" stroke-width="1.5"/>')
    for i, turn in enumerate(turns):
        label = turn.emotion.get("label") or "unknown"
        valence = turn.emotion.get("valence")
        cy = y(float(valence)) if valence is not None else y(0)
        title = html.escape(f"turn {i + 1}: {label}, valence {valence}: {turn.text}")
        parts.append(f'<circle class="turn" cx="{x(i):.1f}" cy="{cy:.1f}" r="6" fill="{COLOURS.get(label, "#ccc")}">'
                     f'<title>{title}</title></circle>')
        if n <= 40 or i % max(1, n // 20) == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="10">{i + 1}</text>')
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="11">turn</text>')
    parts.append("</svg>")
    return "".join(parts)


def to_html(sender_id: str, turns: List[Turn]) -> str:
    """A self-contained HTML page: the timeline and the annotated transcript."""
    legend = " ".join(
        f'<span class="chip" style="background:{colour}">{label}</span>' for label, colour in COLOURS.items()
    )
    rows = []
    for number, turn in enumerate(turns, 1):
        emotion = turn.emotion
        label = emotion.get("label") or "not sensed"
        reading = emotion.get("reading") or {}
        shares = ", ".join(f"{c['modality']} {c['label']} {c['share'] * 100:.0f}%" for c in reading.get("contributions", []))
        confidence = emotion.get("confidence")
        valence = emotion.get("valence")
        replies = "".join(
            f"<div class='bot'>{html.escape(r['text'])} <small>({html.escape(str(r.get('action')))})</small></div>"
            if r.get("text") else f"<div class='bot warn'>{html.escape(r.get('warning') or 'ran ' + str(r.get('action')))}</div>"
            for r in turn.replies
        )
        if turn.slots:
            replies += f"<div class='set'>set: {html.escape(turn.slots_line())}</div>"
        rows.append(
            f"<tr><td>{number}</td><td>{html.escape(turn.text)}</td>"
            f"<td><span class='chip' style='background:{COLOURS.get(label, '#ccc')}'>{html.escape(label)}</span>"
            f"{'' if confidence is None else f' {float(confidence):.2f}'}</td>"
            f"<td>{'' if valence is None else f'{float(valence):+.2f}'}</td><td>{html.escape(shares)}</td>"
            f"<td>{replies}</td></tr>"
        )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conversation {html.escape(sender_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 16px; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 6px 8px; vertical-align: top; text-align: left; font-size: 14px; }}
.chip {{ display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }}
.bot {{ color: #234; }} .warn {{ color: #a00; }} small {{ color: #888; }} .set {{ color: #666; font-size: 12px; }}
</style></head><body>
<h1>Conversation {html.escape(sender_id)}</h1>
<p>{len(turns)} user turns · generated {generated} by <code>emobot replay --html</code></p>
<h2>Valence and fused emotion per turn</h2>
{_timeline_svg(turns)}
<p>{legend}</p>
<table><thead><tr><th>#</th><th>user</th><th>emotion</th><th>valence</th><th>modalities</th><th>bot</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>
</body></html>
"""
