"""The insights as one self-contained HTML page: charts drawn by matplotlib and embedded as PNG.

Why matplotlib: it is maintained, already installed with the project (no new dependency and
nothing fetched by the browser), and a PNG looks the same in a browser, a mail or a PDF; the
page needs no JavaScript. The same page is ``emobot insights --html`` and the service's
``/insights``.
"""
from __future__ import annotations

import base64
import html
import io
import time
from typing import Any, Dict, List, Optional

from emotion_sensing.insights import MIX_LABELS

COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#2ca02c", "sad": "#1f77b4",
           "surprise": "#ff7f0e", "neutral": "#b0b0b0", "unknown": "#e0e0e0", "not sensed": "#f4f4f4"}


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _mix_chart(rows: List[Dict[str, Any]], key: str, title: str, valence: bool = False) -> Optional[str]:
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r[key] for r in rows]
    figure, axis = plt.subplots(figsize=(max(5.0, 0.55 * len(rows) + 2), 3.4))
    bottom = [0.0] * len(rows)
    for label in MIX_LABELS:
        values = [r["shares"].get(label, 0.0) for r in rows]
        if any(values):
            axis.bar(names, values, bottom=bottom, color=COLOURS[label], label=label, edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, values)]
    axis.set_ylim(0, 1)
    axis.set_ylabel("share of user turns")
    axis.set_title(title, pad=16)
    axis.tick_params(axis="x", rotation=45 if len(rows) > 4 else 0)
    for i, row in enumerate(rows):
        axis.text(i, 1.01, f"n={row['n']}", ha="center", va="bottom", fontsize=7)
    if valence and any(r.get("valence") for r in rows):
        twin = axis.twinx()
        twin.plot(names, [(r["valence"] or {}).get("mean") for r in rows], color="black", marker="o", label="valence")
        twin.set_ylim(-1, 1)
        twin.set_ylabel("mean valence")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.08 if valence else 1.0, 1.0))
    return _png(figure)


def _interval_chart(rows: List[Dict[str, Any]], name: str, value: str, title: str, xlabel: str) -> Optional[str]:
    rows = [r for r in rows if r.get(value)]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 0.35 * len(rows) + 1.2))
    means = [r[value]["mean"] for r in rows]
    errors = [[m - (r[value]["ci95"] or [m, m])[0] for m, r in zip(means, rows)],
              [(r[value]["ci95"] or [m, m])[1] - m for m, r in zip(means, rows)]]
    labels = [f"{r[name]} (n={r[value]['n']})" for r in rows]
    axis.barh(labels, means, xerr=errors, color=["#d62728" if m < 0 else "#2ca02c" for m in means], capsize=3)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.invert_yaxis()
    axis.set_xlabel(xlabel)
    axis.set_title(title)
    return _png(figure)


def _img(src: Optional[str], alt: str) -> str:
    return f"<img src='{src}' alt='{html.escape(alt)}'>" if src else f"<p class='empty'>{html.escape(alt)}: no group with enough turns.</p>"


def _replay(sender_id: str, base_url: Optional[str]) -> str:
    escaped = html.escape(sender_id)
    if base_url is not None:
        return f"<a href='{html.escape(base_url.rstrip('/'), quote=True)}/replay/{html.escape(sender_id, quote=True)}'>{escaped}</a>"
    return f"<code>{escaped}</code>"


def _ratings_section(result: Dict[str, Any]) -> str:
    """What people rated the chat beside the valence sensed before they rated it."""
    ratings = result.get("ratings") or {}
    slot = html.escape(str(ratings.get("slot", "rating")))
    head = "<h2>Ratings against what was sensed</h2>"
    if not ratings.get("n"):
        return head + f"<p class='empty'>No conversation set the slot <code>{slot}</code> to a rating.</p>"
    rows = "".join(
        f"<tr><td>{r['rating']}</td><td>{r['n']}</td><td>{r['valence_before']['mean']:+.2f}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v * 100:.0f}%' for k, v in sorted(r['mix_before']['shares'].items(), key=lambda kv: -kv[1])[:3]))}</td></tr>"
        for r in ratings["by_rating"]) or (
        f"<tr><td colspan='4' class='empty'>no rating given in {result['query']['min_n']} or more conversations "
        f"(fewer are left out)</td></tr>")
    correlation = ratings["valence_correlation"]
    r_text = (f" Rating against that valence: r = {correlation['r']:+.2f} (n={correlation['n']})."
              if correlation.get("r") is not None else "")
    return (head + f"<p class='how'>The slot <code>{slot}</code>: {ratings['n']} conversations rated, mean "
            f"{ratings['mean']:.2f}. Beside each rating, the mean valence of the person's sensed turns before it and "
            f"the emotions read in them: where the two disagree, the sensing or the rating misreads people.{r_text}</p>"
            f"<table><thead><tr><th>rating</th><th>conversations</th><th>valence before</th><th>emotions before</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def to_html(result: Dict[str, Any], base_url: Optional[str] = None) -> str:
    """The whole report; with ``base_url`` (the emotion service's; "" on the service itself)
    conversation ids are links to their replay pages, else they show the replay command."""
    q = result["query"]
    scope = []
    if q.get("since"):
        scope.append("since " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(q["since"])))
    if q.get("until"):
        scope.append("until " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(q["until"])))
    if q.get("model_id"):
        scope.append(f"model {q['model_id']}")
    actions = result["actions"]
    policy = result["policy"]
    upset_rows = "".join(
        f"<tr><td>{_replay(c['sender_id'], base_url)}</td><td>{c['last_valence']:+.2f}</td><td>{c['user_turns']}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M', time.gmtime(c['last_turn']))}</td></tr>"
        for c in result["ended_upset"]["conversations"][:20])
    example_rows = "".join(
        f"<tr><td>{html.escape(a['action'])}</td><td>{a['valence_change']['mean']:+.3f}</td><td>{a['valence_change']['n']}</td>"
        f"<td>{', '.join(_replay(e['sender_id'], base_url) for e in (a['worst_examples'] if a['valence_change']['mean'] < 0 else a['best_examples'])[:3])}</td></tr>"
        for a in actions["worse"][:8] + actions["better"][:8])
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in result["notes"])
    left_out = ", ".join(f"{n} {what}" for what, n in result["left_out_below_min_n"].items()) or "none"
    after = ", ".join(f"{html.escape(k)}: {v}" for k, v in policy["after"].items()) or "nothing yet"
    before_after = ""
    if policy.get("valence_before") and policy.get("valence_after"):
        before_after = (f" Mean valence when it stepped in {policy['valence_before']['mean']:+.2f}; "
                        f"at the next user turn {policy['valence_after']['mean']:+.2f} (n={policy['valence_after']['n']}).")
    ratings = _ratings_section(result)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Emotion insights</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; max-width: 1100px; color: #222; }}
h2 {{ margin-top: 32px; border-bottom: 1px solid #ddd; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 10px; text-align: left; border-bottom: 1px solid #eee; }}
.note {{ background: #fff6d5; padding: 6px 10px; }} .empty {{ color: #777; }} .how {{ color: #555; font-size: 0.92em; }}
</style></head><body>
<h1>Emotion insights</h1>
<p>{result['conversations']:,} conversations, {result['user_turns']:,} user turns, {result['sensed_turns']:,} with a sensed
emotion{(' · ' + html.escape(', '.join(scope))) if scope else ''} · groups under n={q['min_n']} left out ({html.escape(left_out)}) ·
generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by <code>emobot insights</code></p>
{notes}
<h2>Emotion mix over time</h2>
<p class="how">Each bar: the user turns of one {html.escape(q['bucket'])}, by the fused emotion the assistant adapted to; the line is their mean valence (-1 to +1).</p>
{_img(_mix_chart(result['over_time'], 'bucket', 'user turns by emotion', valence=True), 'emotion mix over time')}
<h2>By sensing source</h2>
<p class="how">Which senses were on for the turn: the words only, or with the camera and/or the microphone.</p>
{_img(_mix_chart(result['by_source'], 'source', 'user turns by emotion and source'), 'by source')}
<h2>How people feel when they ask</h2>
<p class="how">Mean valence of the user turns of each intent, with its 95% confidence interval; most upset first.</p>
{_img(_interval_chart(result['intents'], 'intent', 'valence', 'mean valence by intent', 'valence'), 'intents')}
<h2>Replies that make things worse, and better</h2>
<p class="how">For each bot action: the change in valence from the user turn before it to the user turn after it (mean, 95% CI).
A negative bar means people felt worse after that reply.</p>
{_img(_interval_chart(actions['all'], 'action', 'valence_change', 'valence change after each reply', 'change in valence'), 'actions')}
<table><thead><tr><th>action</th><th>mean change</th><th>n</th><th>example conversations</th></tr></thead><tbody>{example_rows}</tbody></table>
{'' if base_url is not None else '<p class="how">Replay a conversation with <code>emobot replay ID</code>, or open <code>/replay/ID</code> on the emotion service.</p>'}
<h2>The EmotionPolicy</h2>
<p>It stepped in {policy['stepped_in']} times. What followed: {after}.{before_after}</p>
<h2>Conversations that ended upset</h2>
<p class="how">Last sensed valence at or below {result['ended_upset']['threshold']:+.2f}; {result['ended_upset']['n']} conversations, most upset first.</p>
<table><thead><tr><th>conversation</th><th>last valence</th><th>user turns</th><th>last turn</th></tr></thead><tbody>{upset_rows}</tbody></table>
{ratings}
</body></html>
"""
