//! report.html: one self-contained page (inline CSS and SVG, no script, no network) with the scenario,
//! the verdicts and counterexamples, the summary figures, every chart, the Lamport diagrams and the
//! command that replays the run.

use std::fmt::Write as _;

use crate::data::{human_duration, Outcome, RunData, Validity};
use crate::metrics;
use crate::RenderedChart;

/// Escapes text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document made fit to inline in HTML: no XML prolog, no namespace URL (HTML knows `svg`).
pub fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(start) => &svg[start..],
        None => svg,
    };
    body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1).replacen(
        " xmlns:xlink=\"http://www.w3.org/1999/xlink\"",
        "",
        1,
    )
}

const STYLE: &str = "
body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:0 auto;max-width:1140px;padding:16px 20px;color:#222;line-height:1.45}
h1{margin:.2em 0 .1em;overflow-wrap:anywhere}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.6em}
.meta{color:#555}.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}
.valid{background:#2ca02c}.invalid{background:#d62728}.unknown{background:#ff7f0e}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 10px;text-align:left}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:8px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
figure{margin:18px 0}figcaption{color:#555;font-size:90%}svg{max-width:100%;height:auto}
.grid{display:flex;flex-wrap:wrap;gap:12px 28px}code{background:#f2f2f2;padding:1px 4px}
";

fn badge(validity: Validity) -> String {
    format!("<span class=\"badge {0}\">{0}</span>", validity.as_str())
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{}</th><td class=\"num\">{}</td></tr>", escape_html(name), escape_html(value));
}

/// The whole page. Deterministic: it depends on the run folder only.
pub fn report_html(run: &RunData, charts: &[RenderedChart]) -> String {
    let info = &run.info;
    let title = info.label();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>detsim report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape_html(&title)
    );
    // Header: what ran and the overall verdict.
    let _ = writeln!(html, "<h1>{}</h1>", escape_html(&title));
    let mut meta = Vec::new();
    if let Some(protocol) = &info.protocol {
        meta.push(format!("protocol <b>{}</b>", escape_html(protocol)));
    }
    if let Some(seed) = info.seed {
        meta.push(format!("seed <b>{seed}</b>"));
    }
    if let Some(hash) = &info.trace_hash {
        meta.push(format!("trace hash <code>{}</code>", escape_html(hash)));
    }
    if let Some(file) = &info.file {
        meta.push(format!("scenario file <code>{}</code>", escape_html(file)));
    }
    let _ = writeln!(html, "<p class=\"meta\">{}</p>", meta.join(" · "));
    let mut verdict = format!("<p>Verdict: {}", badge(info.validity()));
    if let Some(expect) = &info.expect {
        let _ = write!(verdict, " · expected <b>{}</b>", escape_html(expect));
    }
    if let Some(outcome_ok) = info.outcome_ok {
        let _ = write!(verdict, " · {}", if outcome_ok { "as expected" } else { "<b>NOT as expected</b>" });
    }
    verdict.push_str("</p>");
    html.push_str(&verdict);
    html.push('\n');
    if let Some(description) = &info.description {
        for paragraph in description.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let _ = writeln!(html, "<p>{}</p>", escape_html(paragraph.trim()));
        }
    }

    // Checks, with counterexamples.
    html.push_str("<h2>Checks</h2>\n");
    if info.checks.is_empty() {
        html.push_str("<p>run.json records no checks.</p>\n");
    }
    for check in &info.checks {
        let validity = check.validity();
        let _ = writeln!(html, "<h3>{} {}</h3>", escape_html(&check.name), badge(validity));
        if !check.report.is_empty() {
            let _ = writeln!(html, "<pre>{}</pre>", escape_html(&check.report));
        }
        if !check.details.is_null() {
            let details = serde_json::to_string_pretty(&check.details).unwrap_or_default();
            // A violation's details are its counterexample: shown open.
            let (open, summary) = if validity == Validity::Invalid {
                (" open", "counterexample (the checker's details, JSON)")
            } else {
                ("", "the checker's details (JSON)")
            };
            let _ = writeln!(
                html,
                "<details{open}><summary>{summary}</summary><pre>{}</pre></details>",
                escape_html(&details)
            );
        }
    }

    // Summary figures: run.json's where it has them, else computed from the history and trace.
    html.push_str("<h2>Summary</h2>\n<div class=\"grid\">\n<table>\n");
    let count = |outcome: Outcome| run.ops.iter().filter(|op| op.outcome == outcome).count() as u64;
    let ops = info.ops.unwrap_or(run.ops.len() as u64);
    row(&mut html, "operations", &ops.to_string());
    row(&mut html, "ok", &info.ok.unwrap_or_else(|| count(Outcome::Ok)).to_string());
    row(&mut html, "fail", &info.fail.unwrap_or_else(|| count(Outcome::Fail)).to_string());
    row(&mut html, "unknown (info or unfinished)", &info.info.unwrap_or_else(|| count(Outcome::Unknown)).to_string());
    let availability = info.availability.or_else(|| metrics::availability(&run.ops));
    row(&mut html, "availability", &availability.map_or("n/a".into(), |a| format!("{:.2}%", a * 100.0)));
    let during: Vec<_> =
        run.ops.iter().filter(|op| metrics::invoked_during_faults(op, &run.fault_windows)).cloned().collect();
    if !during.is_empty() {
        let a = metrics::availability(&during).unwrap_or(0.0);
        row(&mut html, "availability during faults", &format!("{:.2}% of {}", a * 100.0, during.len()));
    }
    let stale = metrics::stale_reads(&run.ops);
    if stale.reads_ok > 0 {
        row(&mut html, "stale reads", &format!("{} of {} ok reads", stale.stale, stale.reads_ok));
    }
    html.push_str("</table>\n<table>\n");
    let mut latencies: Vec<u64> =
        run.ops.iter().filter(|op| op.outcome == Outcome::Ok).map(|op| op.latency_ns(run.end_ns)).collect();
    latencies.sort_unstable();
    for (name, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)] {
        let value = info
            .latency_ns
            .as_ref()
            .and_then(|l| l.get(name).copied())
            .map(|v| v as u64)
            .or_else(|| metrics::quantile(&latencies, q));
        row(&mut html, &format!("latency {name}"), &value.map_or("n/a".into(), human_duration));
    }
    let messages_per_op = info.messages_per_op.unwrap_or(run.trace.sends as f64 / run.ops.len().max(1) as f64);
    row(&mut html, "messages per operation", &format!("{messages_per_op:.2}"));
    html.push_str("</table>\n<table>\n");
    row(&mut html, "events", &info.events.unwrap_or(run.trace.events).to_string());
    row(&mut html, "messages sent", &run.trace.sends.to_string());
    row(&mut html, "delivered", &run.trace.deliveries.to_string());
    for (reason, n) in &run.trace.drops_by_reason {
        row(&mut html, &format!("dropped: {reason}"), &n.to_string());
    }
    row(&mut html, "simulated time", &human_duration(run.end_ns));
    html.push_str("</table>\n</div>\n");

    // Faults.
    html.push_str("<h2>Faults</h2>\n");
    if run.fault_windows.is_empty() && run.trace.faults.is_empty() {
        html.push_str("<p>No faults were injected.</p>\n");
    } else {
        html.push_str("<table><tr><th>fault</th><th>from</th><th>to</th></tr>\n");
        for window in &run.fault_windows {
            let end = window.end_ns.map_or("end of run".to_string(), |e| format!("{:.3} s", e as f64 / 1e9));
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"num\">{:.3} s</td><td class=\"num\">{}</td></tr>",
                escape_html(&window.kind),
                window.start_ns as f64 / 1e9,
                escape_html(&end)
            );
        }
        for fault in run.trace.faults.iter().filter(|f| f.kind.starts_with("clock-")) {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td class=\"num\">{:.3} s</td><td class=\"num\">(instant)</td></tr>",
                escape_html(&fault.label),
                fault.t_ns as f64 / 1e9
            );
        }
        html.push_str("</table>\n");
    }

    // Charts and diagrams.
    html.push_str("<h2>Charts</h2>\n");
    for chart in charts.iter().filter(|c| !c.name.starts_with("lamport")) {
        let _ = writeln!(
            html,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            escape_html(&chart.name),
            inline_svg(&chart.svg),
            escape_html(&chart.caption)
        );
    }
    html.push_str("<h2>Lamport diagram</h2>\n");
    for chart in charts.iter().filter(|c| c.name.starts_with("lamport")) {
        let _ = writeln!(
            html,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            escape_html(&chart.name),
            inline_svg(&chart.svg),
            escape_html(&chart.caption)
        );
    }
    html.push_str(
        "<p>Other windows and filters: <code>detsim plot DIR --from 1.5s --to 2s --node n1 --node n2 --kind TYPE</code> (see <code>detsim plot --help</code>).</p>\n",
    );

    // How to get this run back.
    html.push_str("<h2>Replay</h2>\n");
    match &info.replay {
        Some(replay) => {
            let _ = writeln!(html, "<pre>{}</pre>", escape_html(replay));
        }
        None => html.push_str("<p>run.json records no replay command.</p>\n"),
    }
    let _ = writeln!(
        html,
        "<p>Re-render this page from the run folder: <code>detsim plot {}</code></p>",
        escape_html(&run.dir.display().to_string())
    );
    html.push_str("</body>\n</html>\n");
    html
}
