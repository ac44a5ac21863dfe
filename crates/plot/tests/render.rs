//! Structural tests of a run's rendered charts and report, on the demo register's run folders: every
//! SVG is well-formed, the expected series are present, fault windows are shaded where the run put
//! them, the Lamport diagram accounts for every message, renders are byte-for-byte deterministic and
//! report.html is self-contained.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use detsim_plot::demo::{write_demo_run, DemoConfig, Mode};
use detsim_plot::{
    load_run, render_run, render_run_charts, to_svg, LamportDiagram, LamportOptions, LatencyChart, RenderOptions,
    RenderedChart,
};

/// A fresh run folder of the demo under this test target's temporary directory.
fn fixture(name: &str, config: &DemoConfig) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plot-render").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old fixture");
    }
    write_demo_run(&dir, config).expect("the demo run writes its folder");
    dir
}

fn cp_fixture(name: &str) -> PathBuf {
    fixture(name, &DemoConfig::default())
}

/// An element of a parsed SVG: its tag and attributes, and its text.
#[derive(Clone, Debug)]
struct Element {
    tag: String,
    attributes: BTreeMap<String, String>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> &str {
        self.attributes.get(name).map_or("", String::as_str)
    }
    fn number(&self, name: &str) -> f64 {
        self.attr(name).parse().unwrap_or_else(|_| panic!("{name} of {self:?} is a number"))
    }
}

/// Parses an SVG (panicking if it is not well-formed XML with an `svg` root) into its elements.
fn parse_svg(svg: &str) -> Vec<Element> {
    let document = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("well-formed SVG: {e}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert!(root.attribute("width").is_some() && root.attribute("height").is_some());
    root.descendants()
        .filter(|n| n.is_element())
        .map(|n| Element {
            tag: n.tag_name().name().to_string(),
            attributes: n.attributes().map(|a| (a.name().to_string(), a.value().to_string())).collect(),
            text: n.text().unwrap_or("").trim().to_string(),
        })
        .collect()
}

fn texts(elements: &[Element]) -> Vec<String> {
    elements.iter().filter(|e| e.tag == "text").map(|e| e.text.clone()).collect()
}

fn has_text(elements: &[Element], wanted: &str) -> bool {
    texts(elements).iter().any(|t| t.contains(wanted))
}

fn chart<'a>(charts: &'a [RenderedChart], name: &str) -> &'a RenderedChart {
    charts.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("a {name} chart"))
}

const OK_FILL: &str = "#2CA02C";
const UNKNOWN_FILL: &str = "#FF7F0E";
const PARTITION_FILL: &str = "#1F77B4";
const CRASH_FILL: &str = "#D62728";

/// The demo's fault windows at 4 s: a partition over [1 s, 2 s), s2 crashed over [2.5 s, 3 s).
#[test]
fn fault_windows_are_shaded_and_labelled_where_the_run_put_them() {
    let dir = cp_fixture("windows");
    let run = load_run(&dir).expect("the fixture loads");
    let kinds: Vec<(&str, u64, Option<u64>)> =
        run.fault_windows.iter().map(|w| (w.kind.as_str(), w.start_ns, w.end_ns)).collect();
    assert_eq!(
        kinds,
        [("partition", 1_000_000_000, Some(2_000_000_000)), ("crash s2", 2_500_000_000, Some(3_000_000_000))]
    );
    let charts = render_run_charts(&run, &RenderOptions::default(), None).expect("charts render");
    for name in ["latency", "latency-quantiles", "throughput", "availability"] {
        let rendered = chart(&charts, name);
        let layout = rendered.layout.clone().expect("charts over time have a layout");
        let elements = parse_svg(&rendered.svg);
        let shades: Vec<&Element> =
            elements.iter().filter(|e| e.tag == "rect" && e.attr("opacity") == "0.15").collect();
        assert_eq!(shades.len(), 2, "{name}: one shaded rectangle per window");
        for (shade, (fill, start_s, end_s)) in shades.iter().zip([(PARTITION_FILL, 1.0, 2.0), (CRASH_FILL, 2.5, 3.0)]) {
            assert_eq!(shade.attr("fill"), fill, "{name}");
            let (x, width) = (shade.number("x"), shade.number("width"));
            assert!((x - layout.x_to_px(start_s)).abs() <= 1.5, "{name}: window starts at {start_s} s: x {x}");
            assert!((x + width - layout.x_to_px(end_s)).abs() <= 1.5, "{name}: window ends at {end_s} s");
            let (y, height) = (shade.number("y"), shade.number("height"));
            assert!(
                y <= layout.y_px.start as f64 + 1.0 && y + height >= layout.y_px.end as f64 - 2.0,
                "{name}: full height"
            );
        }
        // The strip above names each window and the clock faults.
        for label in ["partition", "crash s2", "clock-drift s1 +150000 ppm", "clock-jump s2 +50 ms"] {
            assert!(has_text(&elements, label), "{name}: label {label:?} in {:?}", texts(&elements));
        }
    }
}

#[test]
fn latency_chart_has_a_point_per_operation_by_outcome() {
    let dir = cp_fixture("latency");
    let run = load_run(&dir).expect("the fixture loads");
    let count = |outcome: &str| run.ops.iter().filter(|op| op.outcome.as_str() == outcome).count();
    let (ok, unknown) = (count("ok"), count("unknown"));
    assert!(ok > 100 && unknown > 3, "the CP demo times out during the partition: ok {ok}, unknown {unknown}");
    let (svg, layout) = to_svg(&LatencyChart { run: &run }).expect("renders");
    let layout = layout.expect("layout");
    let elements = parse_svg(&svg);
    assert!(has_text(&elements, &format!("ok ({ok})")));
    assert!(has_text(&elements, &format!("unknown ({unknown})")));
    assert!(has_text(&elements, "fail (0)"));
    let dots = |fill: &str| {
        elements.iter().filter(|e| e.tag == "circle" && e.attr("fill") == fill && e.attr("r") == "2").count()
    };
    // Operations on the same pixel share a dot, so at most one dot per operation, and most get one.
    assert!(dots(OK_FILL) <= ok && dots(OK_FILL) * 10 >= ok * 9, "ok dots {} for {ok}", dots(OK_FILL));
    assert!(dots(UNKNOWN_FILL) >= 3);
    // Every timed-out operation sits at the timeout (120 ms), invoked inside the partition.
    for dot in elements.iter().filter(|e| e.tag == "circle" && e.attr("fill") == UNKNOWN_FILL && e.attr("r") == "2") {
        let (cx, cy) = (dot.number("cx"), dot.number("cy"));
        assert!((cy - layout.y_to_px(120.0)).abs() <= 2.0, "a timeout at 120 ms, cy {cy}");
        assert!(cx >= layout.x_to_px(1.0) - 1.0 && cx <= layout.x_to_px(2.0) + 1.0, "invoked during the partition");
    }
}

#[test]
fn quantile_throughput_availability_and_cdf_charts_have_their_series() {
    let dir = cp_fixture("series");
    let run = load_run(&dir).expect("the fixture loads");
    let charts = render_run_charts(&run, &RenderOptions::default(), None).expect("charts render");
    let polylines = |name: &str, stroke: &str| {
        parse_svg(&chart(&charts, name).svg)
            .into_iter()
            // Data lines, not the two-point legend markers.
            .filter(|e| {
                e.tag == "polyline" && e.attr("stroke") == stroke && e.attr("points").split_whitespace().count() > 2
            })
            .collect::<Vec<_>>()
    };
    for (series, stroke) in [("p50", "#1F77B4"), ("p95", "#FF7F0E"), ("p99", "#D62728"), ("max", "#5A5A5A")] {
        assert!(!polylines("latency-quantiles", stroke).is_empty(), "a {series} line");
        assert!(has_text(&parse_svg(&chart(&charts, "latency-quantiles").svg), series));
    }
    for stroke in [OK_FILL, CRASH_FILL, UNKNOWN_FILL] {
        assert_eq!(polylines("throughput", stroke).len(), 1, "one throughput line per outcome");
    }
    // Availability dips below 1 during the partition and is 1 before it.
    let availability = chart(&charts, "availability");
    let layout = availability.layout.clone().expect("layout");
    let mut below_one_in_partition = 0;
    for circle in parse_svg(&availability.svg).iter().filter(|e| e.tag == "circle" && e.attr("fill") == "#1F77B4") {
        let (cx, cy) = (circle.number("cx"), circle.number("cy"));
        if cx < layout.x_to_px(0.9) {
            assert!((cy - layout.y_to_px(1.0)).abs() <= 1.5, "full availability before the partition");
        }
        if cx > layout.x_to_px(1.0) && cx < layout.x_to_px(2.0) && cy > layout.y_to_px(0.95) {
            below_one_in_partition += 1;
        }
    }
    assert!(below_one_in_partition >= 3, "availability drops during the partition");
    let cdf = parse_svg(&chart(&charts, "latency-cdf").svg);
    assert!(cdf
        .iter()
        .any(|e| e.tag == "polyline" && e.attr("stroke") == "#1F77B4" && e.attr("points").split(' ').count() > 100));
    assert!(has_text(&cdf, "p50 ") && has_text(&cdf, "p99 ") && has_text(&cdf, "max "));
    let messages = parse_svg(&chart(&charts, "messages-per-op").svg);
    for kind in ["all types", "Read", "ReadOk", "Write", "WriteOk", "Replicate"] {
        assert!(texts(&messages).iter().any(|t| t == kind), "a {kind} bar");
    }
    let total = run.trace.sends as f64 / run.ops.len() as f64;
    assert!(has_text(&messages, &format!("{total:.2} ({})", run.trace.sends)));
}

/// Counts, straight from trace.jsonl, the deliveries of messages sent or delivered in `[from, to]`.
fn deliveries_in_window(dir: &Path, from_ns: u64, to_ns: u64, nodes: Option<&[&str]>, kinds: Option<&[&str]>) -> u64 {
    let text = std::fs::read_to_string(dir.join("trace.jsonl")).expect("the trace");
    let mut sends: BTreeMap<u64, (u64, String, String, String)> = BTreeMap::new();
    let mut count = 0;
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let t = record["t"].as_u64().expect("t");
        let field = |name: &str| record[name].as_str().unwrap_or("").to_string();
        match record["ev"].as_str() {
            Some("send") => {
                sends.insert(record["id"].as_u64().expect("id"), (t, field("from"), field("to"), field("kind")));
            }
            Some("deliver") => {
                let (sent, from, to, kind) =
                    sends.get(&record["id"].as_u64().expect("id")).expect("sent before").clone();
                let in_window = |x: u64| x >= from_ns && x <= to_ns;
                let shown = nodes.is_none_or(|n| n.contains(&from.as_str()) && n.contains(&to.as_str()));
                let typed = kinds.is_none_or(|k| k.contains(&kind.as_str()));
                if (in_window(sent) || in_window(t) || (sent < from_ns && t > to_ns)) && shown && typed {
                    count += 1;
                }
            }
            _ => {}
        }
    }
    count
}

fn message_lines(svg: &str) -> usize {
    parse_svg(svg).iter().filter(|e| e.tag == "polyline" && e.attr("opacity") == "0.8").count()
}

#[test]
fn lamport_zoom_draws_every_message_of_its_window_one_by_one() {
    let dir = cp_fixture("lamport-zoom");
    let run = load_run(&dir).expect("the fixture loads");
    let zooms = detsim_plot::zoom_windows(&run);
    assert_eq!(zooms.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(), ["lamport-fault-start", "lamport-fault-end"]);
    let (from, to) = zooms[0].window_ns;
    assert!(from < 1_000_000_000 && to > 1_000_000_000, "the zoom holds the partition's start");
    let diagram =
        LamportDiagram::build(&run, &LamportOptions { window_ns: Some((from, to)), ..LamportOptions::default() })
            .expect("builds");
    let expected = deliveries_in_window(&dir, from, to, None, None);
    assert!(expected > 20 && expected < 150, "about {} messages in a zoom, got {expected}", detsim_plot::ZOOM_MESSAGES);
    assert_eq!(diagram.message_count(), expected);
    assert!(!diagram.is_bundled());
    let (svg, _) = to_svg(&diagram).expect("renders");
    assert_eq!(message_lines(&svg) as u64, expected, "one arrow per message");
    let elements = parse_svg(&svg);
    for lane in ["s1", "s2", "c1", "c2"] {
        assert!(texts(&elements).iter().any(|t| t == lane), "a lane for {lane}");
    }
    assert!(has_text(&elements, "partition"), "the strip names the partition");
    assert!(has_text(&elements, "dropped ("), "the legend counts drops");
    assert!(diagram.drop_count() > 0, "the partition drops messages");
    // s1's clock drifts at 150000 ppm from 0.5 s: its lane says by how much, with local readings.
    assert!(texts(&elements).iter().any(|t| t.starts_with("clock +") && t.contains('…')));
    assert!(has_text(&elements, "local "));
    assert!(has_text(&elements, &format!("Filtered out: {} messages outside", diagram.hidden.outside_window)));
}

#[test]
fn lamport_overview_of_a_dense_run_is_bundled_and_says_so() {
    let dir = cp_fixture("lamport-overview");
    let run = load_run(&dir).expect("the fixture loads");
    let diagram = LamportDiagram::build(&run, &LamportOptions::default()).expect("builds");
    let expected = deliveries_in_window(&dir, 0, run.end_ns, None, None);
    assert_eq!(diagram.message_count(), expected, "bundling keeps every message counted");
    assert_eq!(diagram.drop_count(), run.trace.drops);
    assert!(diagram.is_bundled(), "{expected} messages are more than the detail limit");
    let arrows = diagram.arrows_drawn();
    assert!(arrows < expected as usize);
    let (svg, _) = to_svg(&diagram).expect("renders");
    assert_eq!(message_lines(&svg), arrows);
    let notes = diagram.notes().join(" ");
    assert!(notes.contains(&format!("{expected} messages drawn as {arrows} arrows")), "{notes}");
    let elements = parse_svg(&svg);
    assert!(has_text(&elements, "BUNDLED"), "the diagram itself says it is bundled");
    // Raising the limit draws them one by one.
    let detailed = LamportDiagram::build(&run, &LamportOptions { detail_limit: 10_000, ..LamportOptions::default() })
        .expect("builds");
    assert!(!detailed.is_bundled());
    assert_eq!(message_lines(&to_svg(&detailed).expect("renders").0) as u64, expected);
}

#[test]
fn lamport_filters_count_what_they_leave_out() {
    let dir = cp_fixture("lamport-filters");
    let run = load_run(&dir).expect("the fixture loads");
    let window = (900_000_000, 1_300_000_000);
    let options = LamportOptions {
        window_ns: Some(window),
        nodes: vec!["s1".into(), "c1".into()],
        kinds: vec!["Write".into(), "WriteOk".into(), "Read".into(), "ReadOk".into()],
        ..LamportOptions::default()
    };
    let diagram = LamportDiagram::build(&run, &options).expect("builds");
    let shown = deliveries_in_window(
        &dir,
        window.0,
        window.1,
        Some(&["s1", "c1"]),
        Some(&["Write", "WriteOk", "Read", "ReadOk"]),
    );
    let all = deliveries_in_window(&dir, window.0, window.1, None, None);
    assert_eq!(diagram.message_count(), shown);
    assert!(diagram.hidden.other_nodes + diagram.hidden.other_kinds > 0);
    // Every delivery in the window is drawn or counted as filtered (drops are counted apart).
    let filtered_deliveries = all - shown;
    assert!(diagram.hidden.other_nodes + diagram.hidden.other_kinds >= filtered_deliveries);
    let (svg, _) = to_svg(&diagram).expect("renders");
    let elements = parse_svg(&svg);
    let lanes: Vec<String> =
        texts(&elements).into_iter().filter(|t| ["s1", "s2", "c1", "c2"].contains(&t.as_str())).collect();
    assert_eq!(lanes, ["s1", "c1"], "only the chosen lanes");
    let notes = diagram.notes().join(" ");
    assert!(notes.contains("nodes s1, c1") && notes.contains("message types Write, WriteOk, Read, ReadOk"), "{notes}");
    assert!(notes.contains("messages to or from nodes not shown") && notes.contains("Filtered out"), "{notes}");
    assert!(has_text(&elements, "Filtered out"));
    assert!(!texts(&elements).iter().any(|t| t.starts_with("Replicate")), "no legend entry for a hidden type");
}

#[test]
fn renders_are_deterministic_to_the_byte() {
    let first = cp_fixture("determinism-a");
    let second = cp_fixture("determinism-b");
    let options = RenderOptions { png: true, ..RenderOptions::default() };
    let a = render_run(&first, &options).expect("renders");
    let b = render_run(&second, &options).expect("renders");
    assert_eq!(a.files.len(), b.files.len());
    assert!(a.files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")).count() >= 8, "PNG on request");
    for (file_a, file_b) in a.files.iter().zip(&b.files) {
        assert_eq!(file_a.file_name(), file_b.file_name());
        let (bytes_a, bytes_b) = (std::fs::read(file_a).expect("read"), std::fs::read(file_b).expect("read"));
        assert!(bytes_a == bytes_b, "{} differs between two renders of the same run", file_a.display());
    }
    // Rendering the same folder again gives the same report, byte for byte.
    let report = std::fs::read(&a.report).expect("read");
    render_run(&first, &options).expect("renders again");
    assert!(std::fs::read(&a.report).expect("read") == report);
}

#[test]
fn png_files_are_real_images_of_the_chart_size() {
    let dir = cp_fixture("png");
    let summary = render_run(&dir, &RenderOptions { png: true, ..RenderOptions::default() }).expect("renders");
    for png in summary.files.iter().filter(|f| f.extension().is_some_and(|e| e == "png")) {
        let bytes = std::fs::read(png).expect("read");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
        let width = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
        let height = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
        let svg = std::fs::read_to_string(png.with_extension("svg")).expect("the SVG beside it");
        let root = parse_svg(&svg)[0].clone();
        assert_eq!((width as f64, height as f64), (root.number("width"), root.number("height")), "{}", png.display());
        assert!(bytes.len() > 10_000, "{} has content", png.display());
    }
    let without = cp_fixture("no-png");
    let summary = render_run(&without, &RenderOptions::default()).expect("renders");
    assert!(summary.files.iter().all(|f| f.extension().is_some_and(|e| e == "svg")));
    assert!(!without.join("plots/latency.png").exists());
}

/// Every `<svg>...</svg>` inlined in the report.
fn inline_svgs(html: &str) -> Vec<&str> {
    let mut svgs = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed") + start + "</svg>".len();
        svgs.push(&rest[start..end]);
        rest = &rest[end..];
    }
    svgs
}

fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for forbidden in
        ["http://", "https://", "<script", "<link", "<iframe", "<img", "<object", "<embed", "@import", " src="]
    {
        assert!(!lower.contains(forbidden), "report.html contains {forbidden:?}");
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("href=") {
        let value = &rest[at + 5..];
        assert!(
            value.starts_with("\"#") || value.starts_with("'#"),
            "only in-page links: {}",
            &value[..value.len().min(40)]
        );
        rest = &rest[at + 5..];
    }
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("url(") {
        assert!(rest[at + 4..].starts_with('#'), "only in-page url() references");
        rest = &rest[at + 4..];
    }
}

#[test]
fn report_is_self_contained_and_holds_everything() {
    let dir = cp_fixture("report");
    let summary = render_run(&dir, &RenderOptions::default()).expect("renders");
    let html = std::fs::read_to_string(&summary.report).expect("report.html");
    assert_eq!(summary.report_bytes, html.len() as u64);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_self_contained(&html);
    let svgs = inline_svgs(&html);
    let run = load_run(&dir).expect("loads");
    let charts = render_run_charts(&run, &RenderOptions::default(), None).expect("charts");
    assert_eq!(svgs.len(), charts.len(), "every chart inlined");
    for svg in &svgs {
        // Inlined without the namespace URL: parse with it put back.
        let with_namespace = svg.replacen("<svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"", 1);
        parse_svg(&with_namespace);
    }
    for chart in &charts {
        assert!(html.contains(&format!("<figure id=\"{}\">", chart.name)), "{}", chart.name);
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).expect("run.json")).expect("json");
    for wanted in [
        "demo-register-cp",
        "A two-server register in CP mode",
        info["replay"].as_str().expect("a replay command"),
        info["trace_hash"].as_str().expect("a trace hash"),
        "stale-reads",
        "Verdict",
        "availability during faults",
        "latency p99",
        "messages per operation",
    ] {
        assert!(html.contains(&detsim_plot::report::escape_html(wanted)), "report.html lacks {wanted:?}");
    }
    for section in ["Checks", "Summary", "Faults", "Charts", "Lamport diagram", "Replay"] {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "report.html lacks the {section} section");
    }
}

#[test]
fn report_of_a_violation_opens_its_counterexample() {
    let dir = fixture("report-ap", &DemoConfig { mode: Mode::Ap, ..DemoConfig::default() });
    render_run(&dir, &RenderOptions::default()).expect("renders");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert_self_contained(&html);
    assert!(html.contains("<span class=\"badge invalid\">invalid</span>"), "the AP demo reads stale values");
    assert!(html.contains("<details open><summary>"), "the counterexample is open");
    assert!(html.contains("NOT as expected"));
}

#[test]
fn a_window_option_replaces_the_zooms() {
    let dir = cp_fixture("window-option");
    let run = load_run(&dir).expect("loads");
    let options = RenderOptions {
        lamport: LamportOptions { window_ns: Some((2_400_000_000, 2_700_000_000)), ..LamportOptions::default() },
        bucket_ns: Some(250_000_000),
        ..RenderOptions::default()
    };
    let charts = render_run_charts(&run, &options, None).expect("renders");
    let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["latency", "latency-quantiles", "latency-cdf", "throughput", "availability", "messages-per-op", "lamport"]
    );
    let lamport = parse_svg(&chart(&charts, "lamport").svg);
    assert!(has_text(&lamport, "2.40 to 2.70 s"), "{:?}", texts(&lamport));
    assert!(has_text(&lamport, "crashed"), "s2 crashes at 2.5 s");
    assert!(has_text(&parse_svg(&chart(&charts, "throughput").svg), "250 ms buckets"));
}
