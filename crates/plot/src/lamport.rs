//! The Lamport (space-time) diagram: one lane per node, time left to right, an arrow per message
//! coloured by type, drops as crosses, faults as markers, client operations as dots, and each node's
//! local clock written on its lane where it differs from true time.
//!
//! Long runs stay small: a time window and node and type filters choose what is drawn, and past
//! `detail_limit` messages the diagram bundles messages (same sender, receiver, type and time column)
//! into one wider arrow marked ×N. Nothing is dropped silently: every filter and bundling is written on
//! the diagram with its counts.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    draw_error, draw_legend_row, fault_color, format_seconds, text_style, Chart, ChartLayout, FaultStrip, LegendEntry,
    Marker, FAIL_COLOR, FAULT_SHADE_OPACITY, GREY, OK_COLOR, PALETTE, TEXT_GREY, UNKNOWN_COLOR,
};
use crate::data::{for_each_trace_record, human_duration, signed_duration, FaultInstant, FaultWindow, RunData};
use crate::PlotError;

/// Messages drawn one by one at most (about one per 6 pixels of time axis); past it they are bundled.
pub const DEFAULT_DETAIL_LIMIT: usize = 150;
/// Time columns of a bundled diagram (about 30 pixels each).
pub const DEFAULT_BUNDLE_COLUMNS: u64 = 30;

/// What the diagram shows.
#[derive(Clone, Debug, PartialEq)]
pub struct LamportOptions {
    /// `[start, end]` in true nanoseconds; `None`: the whole run.
    pub window_ns: Option<(u64, u64)>,
    /// Lanes to draw (empty: every node). Messages need both ends shown to be drawn.
    pub nodes: Vec<String>,
    /// Message types to draw (empty: every type).
    pub kinds: Vec<String>,
    /// Above this many messages, bundle them (and say so on the diagram).
    pub detail_limit: usize,
    /// Time columns for bundling.
    pub bundle_columns: u64,
}

impl Default for LamportOptions {
    fn default() -> Self {
        LamportOptions {
            window_ns: None,
            nodes: Vec::new(),
            kinds: Vec::new(),
            detail_limit: DEFAULT_DETAIL_LIMIT,
            bundle_columns: DEFAULT_BUNDLE_COLUMNS,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Arrow {
    from_lane: usize,
    to_lane: usize,
    send_ns: u64,
    /// Delivery time (for a drop: the drop time).
    end_ns: u64,
    kind: usize,
    count: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct BundleKey {
    column: u64,
    from_lane: usize,
    to_lane: usize,
    kind: usize,
}

#[derive(Clone, Debug, Default)]
struct Bundle {
    send_sum_ns: u128,
    end_sum_ns: u128,
    count: u64,
}

/// Messages collected one by one until there are too many, then bundled.
#[derive(Debug, Default)]
struct ArrowSet {
    detailed: Vec<Arrow>,
    bundles: Option<BTreeMap<BundleKey, Bundle>>,
    total: u64,
}

impl ArrowSet {
    fn add(&mut self, arrow: Arrow, limit: usize, column_ns: u64) {
        self.total += arrow.count;
        if self.bundles.is_none() && self.detailed.len() >= limit {
            let mut bundles = BTreeMap::new();
            for old in std::mem::take(&mut self.detailed) {
                Self::bundle(&mut bundles, old, column_ns);
            }
            self.bundles = Some(bundles);
        }
        match &mut self.bundles {
            Some(bundles) => Self::bundle(bundles, arrow, column_ns),
            None => self.detailed.push(arrow),
        }
    }
    fn bundle(bundles: &mut BTreeMap<BundleKey, Bundle>, arrow: Arrow, column_ns: u64) {
        let key = BundleKey {
            column: arrow.send_ns / column_ns,
            from_lane: arrow.from_lane,
            to_lane: arrow.to_lane,
            kind: arrow.kind,
        };
        let bundle = bundles.entry(key).or_default();
        bundle.send_sum_ns += arrow.send_ns as u128 * arrow.count as u128;
        bundle.end_sum_ns += arrow.end_ns as u128 * arrow.count as u128;
        bundle.count += arrow.count;
    }
    fn arrows(&self) -> Vec<Arrow> {
        match &self.bundles {
            None => self.detailed.clone(),
            Some(bundles) => bundles
                .iter()
                .map(|(key, b)| Arrow {
                    from_lane: key.from_lane,
                    to_lane: key.to_lane,
                    send_ns: (b.send_sum_ns / b.count as u128) as u64,
                    end_ns: (b.end_sum_ns / b.count as u128) as u64,
                    kind: key.kind,
                    count: b.count,
                })
                .collect(),
        }
    }
    fn is_bundled(&self) -> bool {
        self.bundles.is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
struct OpMark {
    lane: usize,
    t_ns: u64,
    /// `invoke`, `ok`, `fail` or `info`.
    kind: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct LaneClock {
    /// (true ns, local ns) samples spread over the window, for labels.
    samples: Vec<(u64, i64)>,
    next_target: usize,
    offset_min_ns: i64,
    offset_max_ns: i64,
    seen: bool,
}

impl LaneClock {
    fn drifts(&self) -> bool {
        self.seen && (self.offset_min_ns.abs() > 1_000 || self.offset_max_ns.abs() > 1_000)
    }
}

/// Counts of what the filters left out, written on the diagram.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HiddenCounts {
    pub other_nodes: u64,
    pub other_kinds: u64,
    pub outside_window: u64,
    /// Deliveries whose send was not seen (a duplicate delivered long after the first copy).
    pub unmatched_deliveries: u64,
}

/// A diagram ready to draw.
#[derive(Debug)]
pub struct LamportDiagram {
    title: String,
    lanes: Vec<String>,
    window_ns: (u64, u64),
    kinds: Vec<String>,
    kind_counts: Vec<u64>,
    messages: ArrowSet,
    drops: ArrowSet,
    ops: Vec<OpMark>,
    ops_total: u64,
    faults: Vec<FaultInstant>,
    lane_windows: Vec<(usize, String, u64, u64)>,
    /// Windows not tied to one node (partitions, latency spikes...): (kind, start, end), clipped.
    global_windows: Vec<(String, u64, u64)>,
    clocks: Vec<LaneClock>,
    /// The run's fault windows (the strip above the lanes names them).
    windows: Vec<FaultWindow>,
    run_end_ns: u64,
    pub hidden: HiddenCounts,
    options: LamportOptions,
}

const CLOCK_LABELS_PER_LANE: usize = 6;

#[derive(Clone, Debug)]
struct PendingSend {
    t_ns: u64,
    from_lane: Option<usize>,
    to_lane: Option<usize>,
    kind: String,
}

impl LamportDiagram {
    /// Streams the run's trace once and gathers what the options select.
    pub fn build(run: &RunData, options: &LamportOptions) -> Result<LamportDiagram, PlotError> {
        let all_nodes = run.node_names();
        let lanes: Vec<String> = if options.nodes.is_empty() {
            all_nodes.clone()
        } else {
            all_nodes.iter().filter(|n| options.nodes.contains(n)).cloned().collect()
        };
        let (start_ns, end_ns) = options.window_ns.unwrap_or((0, run.end_ns.max(1)));
        let end_ns = end_ns.max(start_ns + 1);
        let column_ns = ((end_ns - start_ns) / options.bundle_columns.max(1)).max(1);
        let lane_of = |name: &Option<String>| name.as_ref().and_then(|n| lanes.iter().position(|l| l == n));
        let in_window = |t: u64| t >= start_ns && t <= end_ns;
        // Colours follow the sorted list of every type in the run, so filters do not recolour arrows.
        let kinds: Vec<String> = run.trace.sends_by_kind.keys().cloned().collect();
        let kind_index = |kind: &str| kinds.iter().position(|k| k == kind).unwrap_or(0);
        let kind_selected = |kind: &str| options.kinds.is_empty() || options.kinds.iter().any(|k| k == kind);

        let mut diagram = LamportDiagram {
            title: String::new(),
            lanes: lanes.clone(),
            window_ns: (start_ns, end_ns),
            kind_counts: vec![0; kinds.len().max(1)],
            kinds: kinds.clone(),
            messages: ArrowSet::default(),
            drops: ArrowSet::default(),
            ops: Vec::new(),
            ops_total: 0,
            faults: run.trace.faults.iter().filter(|f| in_window(f.t_ns)).cloned().collect(),
            lane_windows: Vec::new(),
            global_windows: Vec::new(),
            clocks: vec![LaneClock::default(); lanes.len()],
            windows: run.fault_windows.clone(),
            run_end_ns: run.end_ns,
            hidden: HiddenCounts::default(),
            options: options.clone(),
        };
        for window in &run.fault_windows {
            let mut words = window.kind.splitn(2, ' ');
            let (kind, node) = (words.next().unwrap_or(""), words.next());
            let w_end = window.end_ns.unwrap_or(end_ns);
            if w_end < start_ns || window.start_ns > end_ns {
                continue;
            }
            let (clipped_start, clipped_end) = (window.start_ns.max(start_ns), w_end.min(end_ns));
            match node {
                None => diagram.global_windows.push((kind.to_string(), clipped_start, clipped_end)),
                Some(node) => {
                    if let Some(lane) = lanes.iter().position(|l| l == node) {
                        diagram.lane_windows.push((lane, kind.to_string(), clipped_start, clipped_end));
                    }
                }
            }
        }
        let mut pending: BTreeMap<u64, PendingSend> = BTreeMap::new();
        let mut recently_delivered: BTreeMap<u64, PendingSend> = BTreeMap::new();
        const RECENT_LIMIT: usize = 100_000;
        let targets: Vec<u64> =
            (0..CLOCK_LABELS_PER_LANE as u64).map(|k| start_ns + (end_ns - start_ns) * (2 * k + 1) / 12).collect();

        for_each_trace_record(&run.trace_path(), |record| {
            let t = record.t;
            if let (Some(lane), Some(lt)) = (lane_of(&record.node), record.lt) {
                if in_window(t) {
                    let clock = &mut diagram.clocks[lane];
                    let offset = lt - t as i64;
                    if !clock.seen {
                        clock.offset_min_ns = offset;
                        clock.offset_max_ns = offset;
                        clock.seen = true;
                    }
                    clock.offset_min_ns = clock.offset_min_ns.min(offset);
                    clock.offset_max_ns = clock.offset_max_ns.max(offset);
                    if clock.next_target < targets.len() && t >= targets[clock.next_target] {
                        clock.samples.push((t, lt));
                        while clock.next_target < targets.len() && t >= targets[clock.next_target] {
                            clock.next_target += 1;
                        }
                    }
                }
            }
            match record.ev.as_str() {
                "send" => {
                    let Some(id) = record.id else { return };
                    let kind = record.kind.clone().unwrap_or_else(|| "msg".into());
                    pending.insert(
                        id,
                        PendingSend { t_ns: t, from_lane: lane_of(&record.from), to_lane: lane_of(&record.to), kind },
                    );
                }
                "deliver" | "drop" => {
                    let Some(id) = record.id else { return };
                    let is_drop = record.ev == "drop";
                    let send = match pending.remove(&id) {
                        Some(send) => {
                            if !is_drop {
                                recently_delivered.insert(id, send.clone());
                                if recently_delivered.len() > RECENT_LIMIT {
                                    recently_delivered.pop_first();
                                }
                            }
                            send
                        }
                        None => match recently_delivered.get(&id) {
                            Some(send) => send.clone(),
                            // A drop at send time has no send record: it starts and ends here.
                            None if is_drop => PendingSend {
                                t_ns: t,
                                from_lane: lane_of(&record.from),
                                to_lane: lane_of(&record.to),
                                kind: record.kind.clone().unwrap_or_else(|| "msg".into()),
                            },
                            None => {
                                if in_window(t) {
                                    diagram.hidden.unmatched_deliveries += 1;
                                }
                                return;
                            }
                        },
                    };
                    if !(in_window(send.t_ns) || in_window(t) || (send.t_ns < start_ns && t > end_ns)) {
                        diagram.hidden.outside_window += 1;
                        return;
                    }
                    if !kind_selected(&send.kind) {
                        diagram.hidden.other_kinds += 1;
                        return;
                    }
                    let (Some(from_lane), Some(to_lane)) = (send.from_lane, send.to_lane) else {
                        diagram.hidden.other_nodes += 1;
                        return;
                    };
                    let kind = kind_index(&send.kind);
                    let arrow = Arrow { from_lane, to_lane, send_ns: send.t_ns, end_ns: t, kind, count: 1 };
                    if is_drop {
                        diagram.drops.add(arrow, options.detail_limit, column_ns);
                    } else {
                        diagram.kind_counts[kind] += 1;
                        diagram.messages.add(arrow, options.detail_limit, column_ns);
                    }
                }
                "op" if in_window(t) => {
                    let (Some(lane), Some(op)) = (lane_of(&record.node), &record.op) else { return };
                    diagram.ops_total += 1;
                    if diagram.ops.len() < options.detail_limit {
                        diagram.ops.push(OpMark { lane, t_ns: t, kind: op.kind.as_str().to_string() });
                    }
                }
                _ => {}
            }
        })?;
        if diagram.ops_total > diagram.ops.len() as u64 {
            diagram.ops.clear(); // all or nothing: a partial set of marks would mislead
        }
        let scenario = run.info.label();
        diagram.title = format!(
            "Space-time diagram of {scenario}: {} to {} s",
            format_seconds(start_ns as f64 / 1e9, (end_ns - start_ns) as f64 / 1e9),
            format_seconds(end_ns as f64 / 1e9, (end_ns - start_ns) as f64 / 1e9)
        );
        Ok(diagram)
    }

    /// Messages delivered (drawn or bundled) in the diagram.
    pub fn message_count(&self) -> u64 {
        self.messages.total
    }
    pub fn drop_count(&self) -> u64 {
        self.drops.total
    }
    pub fn is_bundled(&self) -> bool {
        self.messages.is_bundled() || self.drops.is_bundled()
    }
    /// Arrows actually drawn (bundles count once).
    pub fn arrows_drawn(&self) -> usize {
        self.messages.arrows().len()
    }

    /// The notes written under the diagram: filters, bundling, what is not drawn. Every message of
    /// the window is drawn, bundled, or counted here.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let scope = if self.options.nodes.is_empty() {
            format!("all {} nodes", self.lanes.len())
        } else {
            format!("nodes {}", self.lanes.join(", "))
        };
        let kinds = if self.options.kinds.is_empty() {
            "all message types".to_string()
        } else {
            format!("message types {}", self.options.kinds.join(", "))
        };
        notes.push(format!(
            "Shown: {scope}; {kinds}; {} messages delivered, {} dropped; timers are not drawn.",
            self.messages.total, self.drops.total
        ));
        if self.is_bundled() {
            let column =
                human_duration(((self.window_ns.1 - self.window_ns.0) / self.options.bundle_columns.max(1)).max(1));
            notes.push(format!(
                "BUNDLED (more than {} in the window): {} messages drawn as {} arrows, {} drops as {} crosses, one per sender, receiver, type and {column} column; thicker = more. Narrow the window (--from, --to) or filter (--node, --kind) to see each message.",
                self.options.detail_limit,
                self.messages.total,
                self.messages.arrows().len(),
                self.drops.total,
                self.drops.arrows().len()
            ));
        }
        let hidden = &self.hidden;
        let mut filtered = Vec::new();
        if hidden.other_nodes > 0 {
            filtered.push(format!("{} messages to or from nodes not shown", hidden.other_nodes));
        }
        if hidden.other_kinds > 0 {
            filtered.push(format!("{} messages of types not shown", hidden.other_kinds));
        }
        if hidden.outside_window > 0 && (self.window_ns.0 > 0 || self.window_ns.1 < self.run_end_ns) {
            filtered.push(format!(
                "{} messages outside {}–{} s (the run lasts {} s)",
                hidden.outside_window,
                format_seconds(self.window_ns.0 as f64 / 1e9, self.span_s()),
                format_seconds(self.window_ns.1 as f64 / 1e9, self.span_s()),
                format_seconds(self.run_end_ns as f64 / 1e9, self.run_end_ns as f64 / 1e9)
            ));
        }
        if !filtered.is_empty() {
            notes.push(format!("Filtered out: {}.", filtered.join("; ")));
        }
        if hidden.unmatched_deliveries > 0 {
            notes.push(format!(
                "{} duplicate deliveries of long-gone sends are not drawn.",
                hidden.unmatched_deliveries
            ));
        }
        if self.ops_total > 0 && self.ops.is_empty() {
            notes.push(format!(
                "{} client operation events are not marked (more than {}); the latency chart shows every operation.",
                self.ops_total, self.options.detail_limit
            ));
        }
        notes
    }

    /// The notes wrapped to the diagram's width, each line with whether it belongs to the bundling
    /// warning (drawn in red).
    fn note_lines(&self) -> Vec<(String, bool)> {
        self.notes()
            .into_iter()
            .flat_map(|note| {
                let bundled = note.starts_with("BUNDLED");
                crate::chart::wrap_text(&note, 12, WIDTH_PX as i32 - 32).into_iter().map(move |line| (line, bundled))
            })
            .collect()
    }

    fn span_s(&self) -> f64 {
        (self.window_ns.1 - self.window_ns.0) as f64 / 1e9
    }

    fn legend(&self) -> Vec<LegendEntry> {
        let mut entries: Vec<LegendEntry> = self
            .kinds
            .iter()
            .enumerate()
            .filter(|(index, _)| self.kind_counts.get(*index).copied().unwrap_or(0) > 0)
            .map(|(index, kind)| {
                let count = self.kind_counts.get(index).copied().unwrap_or(0);
                LegendEntry::new(format!("{kind} ({count})"), PALETTE[index % PALETTE.len()], Marker::Line)
            })
            .collect();
        entries.push(LegendEntry::new(format!("dropped ({})", self.drops.total), FAIL_COLOR, Marker::Cross));
        if !self.ops.is_empty() {
            entries.push(LegendEntry::new("op invoked", GREY, Marker::Ring));
            entries.push(LegendEntry::new("ok", OK_COLOR, Marker::Dot));
            entries.push(LegendEntry::new("fail", FAIL_COLOR, Marker::Dot));
            entries.push(LegendEntry::new("unknown", UNKNOWN_COLOR, Marker::Dot));
        }
        if self.clocks.iter().any(LaneClock::drifts) {
            entries.push(LegendEntry::new("local clock reading", PALETTE[9], Marker::Line));
        }
        entries
    }

    fn strip(&self) -> FaultStrip {
        let x_range = self.window_ns.0 as f64 / 1e9..self.window_ns.1 as f64 / 1e9;
        FaultStrip::new(&self.windows, &self.faults, x_range, PLOT_WIDTH_PX as i32)
    }

    fn layout_px(&self) -> LamportLayout {
        let strip = self.strip();
        let mut legend = self.legend();
        legend.extend(strip.legend());
        let legend_rows = crate::chart::legend_rows(&legend, (WIDTH_PX - 32) as i32);
        let lanes_px = LANE_HEIGHT_PX * self.lanes.len().max(1) as u32 + X_AXIS_PX + 6;
        let footer_px = 20 * legend_rows + 17 * self.note_lines().len() as u32 + 14;
        LamportLayout { strip, legend, lanes_px, footer_px }
    }
}

struct LamportLayout {
    strip: FaultStrip,
    legend: Vec<LegendEntry>,
    lanes_px: u32,
    footer_px: u32,
}

const LANE_HEIGHT_PX: u32 = 46;
const WIDTH_PX: u32 = 1100;
const LANE_LABEL_PX: u32 = 140;
const MARGIN_LEFT_PX: u32 = 10;
const MARGIN_RIGHT_PX: u32 = 24;
const X_AXIS_PX: u32 = 38;
const TITLE_PX: u32 = 30;
const PLOT_WIDTH_PX: u32 = WIDTH_PX - LANE_LABEL_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX;

impl Chart for LamportDiagram {
    fn size(&self) -> (u32, u32) {
        let layout = self.layout_px();
        (WIDTH_PX, TITLE_PX + layout.strip.height_px() + layout.lanes_px + layout.footer_px)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let layout = self.layout_px();
        let (width, _) = self.size();
        let below_title = crate::chart::draw_title(root, &self.title)?;
        let (strip_area, below_strip) = below_title.split_vertically(layout.strip.height_px());
        let (main, footer) = below_strip.split_vertically(layout.lanes_px);
        let lane_count = self.lanes.len().max(1);
        let (start_ns, end_ns) = self.window_ns;
        let span_s = self.span_s();
        let x_range = start_ns as f64 / 1e9..end_ns as f64 / 1e9;
        let mut chart = ChartBuilder::on(&main)
            .margin_left(MARGIN_LEFT_PX)
            .margin_right(MARGIN_RIGHT_PX)
            .margin_top(4)
            .margin_bottom(2)
            .x_label_area_size(X_AXIS_PX)
            .y_label_area_size(LANE_LABEL_PX)
            .build_cartesian_2d(x_range.clone(), 0.0..lane_count as f64)
            .map_err(draw_error)?;
        let x_formatter = move |v: &f64| format_seconds(*v, span_s);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .max_light_lines(0)
            .bold_line_style(RGBColor(238, 238, 238))
            .x_desc("true time (s)")
            .x_label_formatter(&x_formatter)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        let (plot_x_px, plot_y_px) = chart.plotting_area().get_pixel_range();
        // Everything below is drawn in the pixels of `main`.
        let base = main.get_base_pixel();
        let lane_y = |lane: usize| lane_count as f64 - lane as f64 - 0.5;
        let t_s = |t: u64| t.clamp(start_ns, end_ns) as f64 / 1e9;
        let px = |t: u64, y: f64| {
            let (x, y) = chart.backend_coord(&(t_s(t), y));
            (x - base.0, y - base.1)
        };

        // Partition-like windows shade the whole diagram; crash and pause windows shade their lane.
        for window in &self.global_windows {
            let color = fault_color(&window.0);
            let (a, b) = (px(window.1, lane_count as f64), px(window.2, 0.0));
            main.draw(&Rectangle::new([a, b], color.mix(FAULT_SHADE_OPACITY * 0.7).filled())).map_err(draw_error)?;
        }
        for (lane, kind, from, to) in &self.lane_windows {
            let color = fault_color(kind);
            let y = lane_y(*lane);
            let (a, b) = (px(*from, y + 0.2), px(*to, y - 0.2));
            main.draw(&Rectangle::new([a, b], color.mix(0.2).filled())).map_err(draw_error)?;
            let style = text_style(10, &color).pos(Pos::new(HPos::Left, VPos::Bottom));
            main.draw(&Text::new(format!("{kind}ed"), (a.0 + 3, a.1 - 1), style)).map_err(draw_error)?;
        }
        // Lanes and their labels (with the clock's offset range where it is not true time).
        for (lane, name) in self.lanes.iter().enumerate() {
            let y = lane_y(lane);
            let (a, b) = (px(start_ns, y), px(end_ns, y));
            main.draw(&PathElement::new(vec![a, b], RGBColor(90, 90, 90).stroke_width(1))).map_err(draw_error)?;
            let clock = &self.clocks[lane];
            let label_y = if clock.drifts() { a.1 - 7 } else { a.1 };
            let label_style = text_style(13, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            main.draw(&Text::new(name.clone(), (a.0 - 8, label_y), label_style)).map_err(draw_error)?;
            if clock.drifts() {
                let range = if clock.offset_min_ns == clock.offset_max_ns {
                    format!("clock {}", signed_duration(clock.offset_min_ns))
                } else {
                    format!("clock {} … {}", signed_duration(clock.offset_min_ns), signed_duration(clock.offset_max_ns))
                };
                let style = text_style(10, &PALETTE[9]).pos(Pos::new(HPos::Right, VPos::Center));
                main.draw(&Text::new(range, (a.0 - 8, a.1 + 8), style)).map_err(draw_error)?;
            }
        }
        // Messages.
        for arrow in self.messages.arrows() {
            let color = PALETTE[arrow.kind % PALETTE.len()];
            let from = px(arrow.send_ns, lane_y(arrow.from_lane));
            let to = px(arrow.end_ns, lane_y(arrow.to_lane));
            let stroke = if arrow.count > 1 { 1 + (arrow.count as f64).log2().min(4.0) as u32 } else { 1 };
            main.draw(&PathElement::new(vec![from, to], color.mix(0.8).stroke_width(stroke))).map_err(draw_error)?;
            main.draw(&arrow_head(from, to, color)).map_err(draw_error)?;
        }
        // Drops: a thin line from the send towards the receiver, and a red cross where it died.
        for drop in self.drops.arrows() {
            let color = PALETTE[drop.kind % PALETTE.len()];
            let from = px(drop.send_ns, lane_y(drop.from_lane));
            let target_y = lane_y(drop.from_lane) + (lane_y(drop.to_lane) - lane_y(drop.from_lane)) * 0.35;
            let at = px(drop.end_ns.max(drop.send_ns), target_y);
            let at = if at.0 - from.0 < 8 { (from.0 + 8, at.1) } else { at };
            main.draw(&PathElement::new(vec![from, at], color.mix(0.6).stroke_width(1))).map_err(draw_error)?;
            main.draw(&Cross::new(at, 4, FAIL_COLOR.stroke_width(2))).map_err(draw_error)?;
        }
        // Client operations.
        for op in &self.ops {
            let p = px(op.t_ns, lane_y(op.lane));
            let color = match op.kind.as_str() {
                "ok" => OK_COLOR,
                "fail" => FAIL_COLOR,
                "info" => UNKNOWN_COLOR,
                _ => GREY,
            };
            if op.kind == "invoke" {
                main.draw(&Circle::new(p, 3, WHITE.filled())).map_err(draw_error)?;
                main.draw(&Circle::new(p, 3, color.stroke_width(1))).map_err(draw_error)?;
            } else {
                main.draw(&Circle::new(p, 3, color.filled())).map_err(draw_error)?;
            }
        }
        // Local clock readings under drifting lanes, on a white backing so arrows do not hide them.
        for (lane, clock) in self.clocks.iter().enumerate().filter(|(_, c)| c.drifts()) {
            let y = lane_y(lane);
            for (t, lt) in &clock.samples {
                let p = px(*t, y);
                let text = format!("local {} s", format_seconds(*lt as f64 / 1e9, span_s / 10.0));
                let text_px = crate::chart::text_width_px(&text, 10);
                let box_top = p.1 + 5;
                main.draw(&Rectangle::new(
                    [(p.0 - 1, box_top), (p.0 + text_px + 3, box_top + 13)],
                    WHITE.mix(0.85).filled(),
                ))
                .map_err(draw_error)?;
                main.draw(&PathElement::new(vec![(p.0, p.1 - 4), (p.0, p.1 + 5)], PALETTE[9].stroke_width(2)))
                    .map_err(draw_error)?;
                let style = text_style(10, &PALETTE[9]).pos(Pos::new(HPos::Left, VPos::Top));
                main.draw(&Text::new(text, (p.0 + 2, box_top + 1), style)).map_err(draw_error)?;
            }
        }
        // Node faults: a triangle on the node's lane (network-wide faults shade the diagram instead).
        for fault in &self.faults {
            let color = fault_color(&fault.kind);
            let network_wide = matches!(
                fault.kind.as_str(),
                "partition" | "heal" | "bridge" | "one-way" | "topology-edge" | "isolate"
            );
            let lane = fault.node.as_ref().and_then(|n| self.lanes.iter().position(|l| l == n));
            let Some(lane) = lane.filter(|_| !network_wide) else { continue };
            let p = px(fault.t_ns, lane_y(lane));
            let triangle = vec![(p.0, p.1 - 1), (p.0 - 6, p.1 - 12), (p.0 + 6, p.1 - 12)];
            main.draw(&Polygon::new(triangle, color.filled())).map_err(draw_error)?;
        }
        // The fault strip above the lanes, in the lanes' pixel columns.
        let x_px = (plot_x_px.start - base.0)..(plot_x_px.end - base.0);
        layout.strip.draw(&strip_area, x_px, x_range.clone())?;
        // Footer: legend, then the notes.
        let rows = draw_legend_row(&footer, &layout.legend, 16, width as i32 - 16)?;
        let mut y = rows as i32 * 20 + 10;
        for (line, bundled) in self.note_lines() {
            let color = if bundled { FAIL_COLOR } else { TEXT_GREY };
            let style = text_style(12, &color).pos(Pos::new(HPos::Left, VPos::Center));
            footer.draw(&Text::new(line, (16, y), style)).map_err(draw_error)?;
            y += 17;
        }
        Ok(Some(ChartLayout { x_px: plot_x_px, y_px: plot_y_px, x_range, y_range: 0.0..lane_count as f64 }))
    }
}

/// A filled triangle at `to`, pointing along `from → to`.
fn arrow_head(from: (i32, i32), to: (i32, i32), color: RGBColor) -> Polygon<(i32, i32)> {
    let (dx, dy) = ((to.0 - from.0) as f64, (to.1 - from.1) as f64);
    let length = (dx * dx + dy * dy).sqrt().max(1e-9);
    let (ux, uy) = (dx / length, dy / length);
    let (head, half) = (7.0, 3.5);
    let base = (to.0 as f64 - ux * head, to.1 as f64 - uy * head);
    let left = ((base.0 - uy * half).round() as i32, (base.1 + ux * half).round() as i32);
    let right = ((base.0 + uy * half).round() as i32, (base.1 - ux * half).round() as i32);
    Polygon::new(vec![to, left, right], color.filled())
}
