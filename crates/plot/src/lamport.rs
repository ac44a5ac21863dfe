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
    draw_error, fault_color, format_seconds, text_style, title_font, Chart, ChartLayout, FAIL_COLOR, GREY, OK_COLOR,
    PALETTE, UNKNOWN_COLOR,
};
use crate::data::{for_each_trace_record, human_duration, signed_duration, FaultInstant, RunData};
use crate::PlotError;

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
        LamportOptions { window_ns: None, nodes: Vec::new(), kinds: Vec::new(), detail_limit: 600, bundle_columns: 100 }
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

    /// The notes written under the diagram: filters, bundling, what is not drawn.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut scope = format!("{} of {} lanes", self.lanes.len(), self.lanes.len());
        if !self.options.nodes.is_empty() {
            scope = format!("nodes: {}", self.lanes.join(", "));
        }
        let kinds =
            if self.options.kinds.is_empty() { "all message types".to_string() } else { format!("types: {}", self.options.kinds.join(", ")) };
        notes.push(format!(
            "{scope}; {kinds}; {} messages delivered, {} dropped (×); timers not drawn",
            self.messages.total, self.drops.total
        ));
        if self.is_bundled() {
            let column = human_duration(((self.window_ns.1 - self.window_ns.0) / self.options.bundle_columns.max(1)).max(1));
            notes.push(format!(
                "BUNDLED: {} messages drawn as {} arrows and {} drops as {} crosses (one per sender, receiver, type and {column} column; ×N = count). Narrow the window or filter to see single messages.",
                self.messages.total,
                self.messages.arrows().len(),
                self.drops.total,
                self.drops.arrows().len()
            ));
        }
        let hidden = &self.hidden;
        if hidden.other_nodes + hidden.other_kinds > 0 {
            notes.push(format!(
                "filtered out: {} messages to or from hidden nodes, {} of hidden types",
                hidden.other_nodes, hidden.other_kinds
            ));
        }
        if hidden.unmatched_deliveries > 0 {
            notes.push(format!("{} duplicate deliveries of long-gone sends not drawn", hidden.unmatched_deliveries));
        }
        if self.ops_total > 0 && self.ops.is_empty() {
            notes.push(format!("{} client operation events not marked (more than {}); see the latency chart", self.ops_total, self.options.detail_limit));
        }
        notes
    }

    fn legend_rows(&self) -> u32 {
        (self.kinds.len() as u32 + 1).div_ceil(5).max(1)
    }
}

const LANE_HEIGHT_PX: u32 = 48;
const WIDTH_PX: u32 = 1100;

impl Chart for LamportDiagram {
    fn size(&self) -> (u32, u32) {
        let notes = self.notes().len() as u32;
        (WIDTH_PX, 60 + LANE_HEIGHT_PX * self.lanes.len().max(1) as u32 + 40 + 20 * self.legend_rows() + 17 * notes + 16)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let (width, height) = self.size();
        let footer_px = 20 * self.legend_rows() + 17 * self.notes().len() as u32 + 16;
        let (main, footer) = root.split_vertically(height - footer_px);
        let lane_count = self.lanes.len().max(1);
        let (start_ns, end_ns) = self.window_ns;
        let span_s = (end_ns - start_ns) as f64 / 1e9;
        let x_range = start_ns as f64 / 1e9..end_ns as f64 / 1e9;
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, title_font(17))
            .margin(10)
            .margin_right(24)
            .x_label_area_size(36)
            .y_label_area_size(150)
            .build_cartesian_2d(x_range.clone(), 0.0..lane_count as f64)
            .map_err(draw_error)?;
        let x_formatter = move |v: &f64| format_seconds(*v, span_s);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(RGBColor(240, 240, 240))
            .x_desc("true time (s)")
            .x_label_formatter(&x_formatter)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        let lane_y = |lane: usize| lane_count as f64 - lane as f64 - 0.5;
        let t_s = |t: u64| t.clamp(start_ns, end_ns) as f64 / 1e9;
        let px = |t: u64, y: f64| chart.backend_coord(&(t_s(t), y));

        // Partition-like windows shade the whole diagram; crash and pause windows shade their lane.
        for window in &self.global_windows {
            let color = fault_color(&window.0);
            let (a, b) = (px(window.1, lane_count as f64), px(window.2, 0.0));
            main.draw(&Rectangle::new([a, b], color.mix(0.08).filled())).map_err(draw_error)?;
            main.draw(&Text::new(window.0.clone(), (a.0 + 3, a.1 + 2), text_style(11, &color))).map_err(draw_error)?;
        }
        for (lane, kind, from, to) in &self.lane_windows {
            let color = fault_color(kind);
            let y = lane_y(*lane);
            let (a, b) = (px(*from, y + 0.22), px(*to, y - 0.22));
            main.draw(&Rectangle::new([a, b], color.mix(0.18).filled())).map_err(draw_error)?;
            main.draw(&Text::new(format!("{kind}ed"), (a.0 + 3, a.1 - 12), text_style(10, &color))).map_err(draw_error)?;
        }
        // Lanes and their labels (with the clock's offset range where it is not true time).
        for (lane, name) in self.lanes.iter().enumerate() {
            let y = lane_y(lane);
            let (a, b) = (px(start_ns, y), px(end_ns, y));
            main.draw(&PathElement::new(vec![a, b], RGBColor(90, 90, 90).stroke_width(1))).map_err(draw_error)?;
            let label_style = text_style(13, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            main.draw(&Text::new(name.clone(), (a.0 - 8, a.1 - 6), label_style)).map_err(draw_error)?;
            let clock = &self.clocks[lane];
            if clock.drifts() {
                let range = if clock.offset_min_ns == clock.offset_max_ns {
                    format!("clock {}", signed_duration(clock.offset_min_ns))
                } else {
                    format!("clock {} … {}", signed_duration(clock.offset_min_ns), signed_duration(clock.offset_max_ns))
                };
                let style = text_style(10, &PALETTE[9]).pos(Pos::new(HPos::Right, VPos::Center));
                main.draw(&Text::new(range, (a.0 - 8, a.1 + 8), style)).map_err(draw_error)?;
                for (t, lt) in &clock.samples {
                    let p = px(*t, y);
                    let text = format!("local {}", format_seconds(*lt as f64 / 1e9, span_s / 10.0));
                    main.draw(&Text::new(text, (p.0, p.1 - 20), text_style(9, &PALETTE[9]))).map_err(draw_error)?;
                    main.draw(&PathElement::new(vec![(p.0, p.1 - 9), (p.0, p.1 - 3)], PALETTE[9].stroke_width(1)))
                        .map_err(draw_error)?;
                }
            }
        }
        // Messages.
        let bundled = self.messages.is_bundled();
        for arrow in self.messages.arrows() {
            let color = PALETTE[arrow.kind % PALETTE.len()];
            let from = px(arrow.send_ns, lane_y(arrow.from_lane));
            let to = px(arrow.end_ns, lane_y(arrow.to_lane));
            let stroke = if arrow.count > 1 { 1 + (arrow.count as f64).log2().min(5.0) as u32 } else { 1 };
            main.draw(&PathElement::new(vec![from, to], color.mix(0.85).stroke_width(stroke))).map_err(draw_error)?;
            main.draw(&arrow_head(from, to, color)).map_err(draw_error)?;
            if bundled && arrow.count > 1 {
                let mid = ((from.0 + to.0) / 2, (from.1 + to.1) / 2);
                main.draw(&Text::new(format!("×{}", arrow.count), (mid.0 + 2, mid.1 - 6), text_style(9, &color)))
                    .map_err(draw_error)?;
            }
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
            if drop.count > 1 {
                main.draw(&Text::new(format!("×{}", drop.count), (at.0 + 5, at.1), text_style(9, &FAIL_COLOR)))
                    .map_err(draw_error)?;
            }
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
                main.draw(&Circle::new(p, 3, color.stroke_width(1))).map_err(draw_error)?;
            } else {
                main.draw(&Circle::new(p, 3, color.filled())).map_err(draw_error)?;
            }
        }
        // Faults: a triangle on the node's lane (or a line across all lanes) and a label.
        for (index, fault) in self.faults.iter().enumerate() {
            let color = fault_color(&fault.kind);
            // Network-wide faults name a node in the trace (the first of a group) but belong to no lane.
            let network_wide = matches!(fault.kind.as_str(), "partition" | "heal" | "bridge" | "one-way" | "topology-edge" | "corrupt");
            let lane = if network_wide { None } else { fault.node.as_ref().and_then(|n| self.lanes.iter().position(|l| l == n)) };
            let p = match lane {
                Some(lane) => px(fault.t_ns, lane_y(lane)),
                None => {
                    let top = px(fault.t_ns, lane_count as f64);
                    let bottom = px(fault.t_ns, 0.0);
                    main.draw(&PathElement::new(vec![top, bottom], color.stroke_width(1))).map_err(draw_error)?;
                    top
                }
            };
            let triangle = vec![(p.0, p.1 - 2), (p.0 - 5, p.1 - 11), (p.0 + 5, p.1 - 11)];
            main.draw(&Polygon::new(triangle, color.filled())).map_err(draw_error)?;
            let dy = 22 + 10 * (index % 2) as i32;
            let label = if network_wide { fault.kind.clone() } else { fault.label.clone() };
            main.draw(&Text::new(label, (p.0 + 4, p.1 - dy), text_style(10, &color))).map_err(draw_error)?;
        }
        // Footer: message-type legend, then the notes.
        let mut x = 16;
        let mut y = 4;
        for (index, kind) in self.kinds.iter().enumerate() {
            if index > 0 && index % 5 == 0 {
                x = 16;
                y += 20;
            }
            let color = PALETTE[index % PALETTE.len()];
            footer.draw(&PathElement::new(vec![(x, y + 8), (x + 22, y + 8)], color.stroke_width(3))).map_err(draw_error)?;
            let label = format!("{kind} ({})", self.kind_counts.get(index).copied().unwrap_or(0));
            footer.draw(&Text::new(label, (x + 28, y + 2), text_style(12, &BLACK))).map_err(draw_error)?;
            x += (width as i32 - 32) / 5;
        }
        if self.kinds.len() % 5 == 0 && !self.kinds.is_empty() {
            x = 16;
            y += 20;
        }
        footer.draw(&Cross::new((x + 11, y + 8), 4, FAIL_COLOR.stroke_width(2))).map_err(draw_error)?;
        footer.draw(&Text::new(format!("dropped ({})", self.drops.total), (x + 28, y + 2), text_style(12, &BLACK)))
            .map_err(draw_error)?;
        y += 20;
        for note in self.notes() {
            let color = if note.starts_with("BUNDLED") { FAIL_COLOR } else { RGBColor(60, 60, 60) };
            footer.draw(&Text::new(note, (16, y), text_style(12, &color))).map_err(draw_error)?;
            y += 17;
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        Ok(Some(ChartLayout { x_px, y_px, x_range }))
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
