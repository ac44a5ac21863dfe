//! Checks over the measurement events that the P2P, failure-detector and clock protocols record in
//! the history (instantaneous `invoke`+`ok` pairs stamped with true time; see
//! detsim_protocols::gossip::events), judged against the run's fault windows:
//!
//! - `broadcast-delivery`: `broadcast` (key: rumor id) and `deliver` (key: rumor id) events;
//! - `failure-detection`: a declaration event (`dead`, `suspect`; key: the node index declared);
//! - `lookups`: DHT `lookup` operations (key: ring key; ok value `[owner index, hops]`);
//! - `clock-sync`: `clock` readings (value `[corrected clock ns, rounds]`).
//!
//! Each reads the events by name and shape only, so any protocol that records them can be checked;
//! a history without them gets verdict "unknown", never a pass. Nodes are named from the event's
//! recording node (or its process, for events recorded with the node index as process).

use crate::checks::CheckContext;
use detsim_check::{Anomaly, Validity, Verdict};
use detsim_core::{EventType, Fault, HistoryEvent, Value};
use std::collections::BTreeMap;

/// How many anomalies a verdict lists at most (the count is in the reason).
const ANOMALY_LIMIT: usize = 16;

/// Runs the measured check `name`; `Err` when the history holds nothing it can judge.
pub fn run(name: &str, context: &CheckContext<'_>) -> Result<Verdict, String> {
    match name {
        "broadcast-delivery" => broadcast_delivery(context),
        "failure-detection" => failure_detection(context),
        "lookups" => lookups(context),
        "clock-sync" => clock_sync(context),
        other => Err(format!("unknown measured check {other:?}")),
    }
}

fn time(ns: u64) -> String {
    crate::units::format_duration_ns(i64::try_from(ns).unwrap_or(i64::MAX))
}

/// The node index that recorded `event`: its node name, else its process when that is a node index.
fn recorder(event: &HistoryEvent, names: &[String]) -> Option<usize> {
    match &event.node {
        Some(name) => names.iter().position(|n| n == name),
        None => usize::try_from(event.process).ok().filter(|&i| i < names.len()),
    }
}

fn name_of(names: &[String], index: usize) -> String {
    names.get(index).cloned().unwrap_or_else(|| format!("node {index}"))
}

/// The `ok` halves of the measurement events named `f`, with their recording node.
fn events<'h>(context: &CheckContext<'h>, f: &str) -> Vec<(&'h HistoryEvent, Option<usize>)> {
    context
        .history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == f)
        .map(|e| (e, recorder(e, context.node_names)))
        .collect()
}

/// When each node was down (crashed or paused): `(node index, start ns, end ns)`.
fn down_windows(context: &CheckContext<'_>) -> Vec<(usize, u64, u64)> {
    context
        .fault_windows
        .iter()
        .filter_map(|(kind, start, end)| {
            let name = kind.strip_prefix("crash ").or_else(|| kind.strip_prefix("pause "))?;
            let node = context.node_names.iter().position(|n| n == name)?;
            Some((node, *start, end.unwrap_or(context.end_ns).max(*start)))
        })
        .collect()
}

/// Whether `node` was down at some instant of `[from_ns, to_ns]`.
fn down_during(windows: &[(usize, u64, u64)], node: usize, from_ns: u64, to_ns: u64) -> bool {
    windows.iter().any(|&(n, start, end)| n == node && start <= to_ns && from_ns <= end)
}

fn verdict(checker: &str, ops: usize, anomalies: Vec<Anomaly>, reason: String) -> Verdict {
    let count = anomalies.len();
    let mut verdict = Verdict::from_anomalies(checker, ops, anomalies.into_iter().take(ANOMALY_LIMIT).collect());
    verdict.reason = Some(if count > ANOMALY_LIMIT {
        format!("{reason}; {count} anomalies, the first {ANOMALY_LIMIT} shown")
    } else {
        reason
    });
    verdict
}

fn broadcast_delivery(context: &CheckContext<'_>) -> Result<Verdict, String> {
    let names = context.node_names;
    let broadcasts = events(context, "broadcast");
    if broadcasts.is_empty() {
        return Err("no `broadcast` events in the history: this check reads the broadcast/deliver events a \
                    gossip protocol records"
            .into());
    }
    let mut delivered: BTreeMap<&Value, BTreeMap<usize, u64>> = BTreeMap::new();
    for (event, node) in events(context, "deliver") {
        if let (Some(key), Some(node)) = (&event.key, node) {
            delivered.entry(key).or_default().entry(node).or_insert(event.time_ns);
        }
    }
    let down = down_windows(context);
    let within_ns = context.check.deliver_within.map(|d| d.as_ns());
    let (mut judged, mut too_late, mut slowest_ns) = (0usize, 0usize, 0u64);
    let mut anomalies = Vec::new();
    for (event, origin) in &broadcasts {
        let Some(key) = &event.key else { continue };
        let start_ns = event.time_ns;
        let deadline_ns = within_ns.map_or(context.end_ns, |w| start_ns.saturating_add(w));
        if deadline_ns > context.end_ns {
            too_late += 1;
            continue;
        }
        judged += 1;
        let seen = delivered.get(key);
        let mut missing = Vec::new();
        for node in 0..context.servers {
            if down_during(&down, node, start_ns, deadline_ns) {
                continue;
            }
            match seen.and_then(|s| s.get(&node)) {
                Some(&at_ns) if at_ns <= deadline_ns => slowest_ns = slowest_ns.max(at_ns - start_ns.min(at_ns)),
                _ => missing.push(name_of(names, node)),
            }
        }
        if !missing.is_empty() {
            let from = origin.map_or_else(|| "?".to_string(), |o| name_of(names, o));
            anomalies.push(Anomaly::new(
                "undelivered",
                format!(
                    "broadcast {key} from {from} at {}: {} of {} live servers had not delivered it by {} ({})",
                    time(start_ns),
                    missing.len(),
                    context.servers,
                    time(deadline_ns),
                    missing.join(", ")
                ),
                Vec::new(),
            ));
        }
    }
    if judged == 0 {
        return Err(format!(
            "none of the {} broadcasts can be judged: each is later than the end of the run minus deliver_within",
            broadcasts.len()
        ));
    }
    let bound = within_ns.map_or_else(|| "by the end of the run".to_string(), |w| format!("within {}", time(w)));
    let reason = format!(
        "{judged} broadcasts judged (every live server delivers each {bound}); slowest delivery {} after its broadcast{}",
        time(slowest_ns),
        if too_late > 0 { format!("; {too_late} too close to the end to judge") } else { String::new() }
    );
    Ok(verdict("broadcast-delivery", broadcasts.len(), anomalies, reason))
}

fn failure_detection(context: &CheckContext<'_>) -> Result<Verdict, String> {
    let names = context.node_names;
    let event_name = context.check.detection_event.as_deref().unwrap_or("dead");
    let within_ns = context.check.detect_within.map(|d| d.as_ns());
    let grace_ns = within_ns.unwrap_or(0);
    let max_false = context.check.max_false_detections.unwrap_or(0);
    let down: Vec<(usize, u64, u64)> =
        down_windows(context).into_iter().filter(|(node, _, _)| *node < context.servers).collect();
    // (time, observer, target)
    let detections: Vec<(u64, usize, usize)> = events(context, event_name)
        .into_iter()
        .filter_map(|(event, observer)| {
            let target = usize::try_from(event.key.as_ref()?.as_int()?).ok()?;
            Some((event.time_ns, observer?, target))
        })
        .collect();
    if detections.is_empty() && down.is_empty() {
        return Err(format!(
            "no `{event_name}` events and no crash or pause to detect: nothing to judge (set [check] \
             detection_event to what the protocol records)"
        ));
    }
    let mut anomalies = Vec::new();
    let mut missed = 0usize;
    let mut worst_detection_ns: Option<u64> = None;
    if let Some(within_ns) = within_ns {
        for &(target, start_ns, end_ns) in &down {
            if end_ns - start_ns < within_ns {
                continue; // back up before it had to be detected
            }
            let deadline_ns = start_ns + within_ns;
            for observer in (0..context.servers).filter(|&o| o != target) {
                if down_during(&down, observer, start_ns, deadline_ns) {
                    continue;
                }
                let first = detections
                    .iter()
                    .filter(|&&(at, o, t)| o == observer && t == target && (start_ns..=deadline_ns).contains(&at))
                    .map(|&(at, _, _)| at)
                    .min();
                match first {
                    Some(at_ns) => {
                        worst_detection_ns = Some(worst_detection_ns.unwrap_or(0).max(at_ns - start_ns));
                    }
                    None => {
                        missed += 1;
                        anomalies.push(Anomaly::new(
                            "missed-detection",
                            format!(
                                "{} went down at {}; {} had not declared it {event_name} by {}",
                                name_of(names, target),
                                time(start_ns),
                                name_of(names, observer),
                                time(deadline_ns)
                            ),
                            Vec::new(),
                        ));
                    }
                }
            }
        }
    }
    let mut false_detections = 0u64;
    for &(at_ns, observer, target) in &detections {
        let explained =
            down.iter().any(|&(n, start, end)| n == target && start <= at_ns && at_ns <= end.saturating_add(grace_ns));
        if !explained {
            false_detections += 1;
            anomalies.push(Anomaly::new(
                "false-detection",
                format!(
                    "{} declared {} {event_name} at {}, but it was up{}",
                    name_of(names, observer),
                    name_of(names, target),
                    time(at_ns),
                    if grace_ns > 0 {
                        format!(" (and had been for more than {})", time(grace_ns))
                    } else {
                        String::new()
                    }
                ),
                Vec::new(),
            ));
        }
    }
    let mut reason = format!(
        "{} `{event_name}` declarations, {false_detections} of a node that was up (at most {max_false} allowed)",
        detections.len()
    );
    if within_ns.is_some() {
        reason.push_str(&format!(
            "; {} down windows, {missed} detections missed, slowest detection {}",
            down.len(),
            worst_detection_ns.map_or_else(|| "n/a".to_string(), time)
        ));
    }
    let mut result = verdict("failure-detection", detections.len(), anomalies, reason);
    // False detections within the allowance are listed but do not invalidate.
    result.valid = if missed > 0 || false_detections > max_false { Validity::Invalid } else { Validity::Valid };
    Ok(result)
}

fn lookups(context: &CheckContext<'_>) -> Result<Verdict, String> {
    let names = context.node_names;
    let ops = context.operations()?;
    let lookups: Vec<_> = ops.iter().filter(|op| op.f == "lookup").collect();
    if lookups.is_empty() {
        return Err("no `lookup` operations in the history: this check reads a DHT's (chord's) lookups".into());
    }
    let down: Vec<(usize, u64, u64)> =
        down_windows(context).into_iter().filter(|(node, _, _)| *node < context.servers).collect();
    let changes: Vec<u64> = down.iter().flat_map(|&(_, start, end)| [start, end]).collect();
    let judge_from_ns = context.check.judge_from.map_or(0, |d| d.as_ns());
    let settle_ns = context.check.settle.map_or(0, |d| d.as_ns());
    let (mut judged, mut failed, mut hops_total) = (0usize, 0usize, 0u64);
    let mut anomalies = Vec::new();
    for op in &lookups {
        let Some(complete_ns) = op.complete_ns else { continue };
        if op.invoke_ns < judge_from_ns
            || changes.iter().any(|&c| c <= complete_ns && op.invoke_ns < c.saturating_add(settle_ns))
        {
            continue;
        }
        let Some(key) = op.key.as_ref().and_then(Value::as_int).and_then(|k| u32::try_from(k).ok()) else {
            continue;
        };
        judged += 1;
        let answer = op.output.as_list().and_then(|l| Some((l.first()?.as_int()?, l.get(1)?.as_int()?)));
        let Some((owner, hops)) = answer.filter(|_| op.outcome == detsim_check::ops::Outcome::Ok) else {
            failed += 1;
            continue;
        };
        hops_total += u64::try_from(hops).unwrap_or(0);
        let live: Vec<u32> = (0..context.servers)
            .filter(|&n| !down_during(&down, n, op.invoke_ns, complete_ns))
            .map(|n| u32::try_from(n).expect("fewer than 2^32 servers"))
            .collect();
        if live.is_empty() {
            continue;
        }
        let expected = detsim_protocols::dht::expected_owner(context.seed, &live, key);
        if owner != i64::from(expected) {
            let by = context.history.events.get(op.invoke_index).and_then(|e| e.node.clone()).unwrap_or_default();
            anomalies.push(Anomaly::new(
                "wrong-owner",
                format!(
                    "lookup of key {key} by {by} at {} answered {}, but the owner among the live nodes is {}",
                    time(op.invoke_ns),
                    usize::try_from(owner).map_or_else(|_| owner.to_string(), |o| name_of(names, o)),
                    name_of(names, expected as usize)
                ),
                vec![(*op).clone()],
            ));
        }
    }
    if judged == 0 {
        return Err(format!(
            "none of the {} lookups can be judged (all before judge_from or within settle of a crash or restart)",
            lookups.len()
        ));
    }
    let succeeded = judged - failed;
    let mean_hops = if succeeded == 0 { 0.0 } else { hops_total as f64 / succeeded as f64 };
    let reason = format!(
        "{judged} lookups judged ({failed} failed, which is availability, not correctness); mean {mean_hops:.2} hops"
    );
    Ok(verdict("lookups", lookups.len(), anomalies, reason))
}

fn clock_sync(context: &CheckContext<'_>) -> Result<Verdict, String> {
    let names = context.node_names;
    let max_error_ns = context
        .check
        .max_clock_error
        .ok_or("the \"clock-sync\" check needs [check] max_clock_error = <duration>")?
        .as_ns();
    let readings = events(context, "clock");
    if readings.is_empty() {
        return Err("no `clock` readings in the history: this check reads what a clock-sync protocol records".into());
    }
    let judge_from_ns = context.check.judge_from.map_or(0, |d| d.as_ns());
    let settle_ns = context.check.settle.map_or(0, |d| d.as_ns());
    // Disturbances of each node's clock: clock faults, and restarts (a restarted node syncs again).
    let mut disturbed: Vec<(usize, u64)> = context
        .faults
        .iter()
        .filter_map(|(at, fault)| match fault {
            Fault::ClockJump { node, .. } | Fault::ClockOffset { node, .. } | Fault::ClockDrift { node, .. } => {
                Some((node.0 as usize, *at))
            }
            _ => None,
        })
        .collect();
    disturbed.extend(down_windows(context).into_iter().map(|(node, _, end)| (node, end)));
    let mut worst_by_node: BTreeMap<usize, (i64, u64)> = BTreeMap::new();
    let mut judged = 0usize;
    for (event, node) in &readings {
        let Some(node) = *node else { continue };
        let Some(corrected) = event.value.as_list().and_then(|l| l.first()?.as_int()) else { continue };
        let at_ns = event.time_ns;
        if at_ns < judge_from_ns
            || disturbed.iter().any(|&(n, t)| n == node && t <= at_ns && at_ns < t.saturating_add(settle_ns))
        {
            continue;
        }
        judged += 1;
        let error_ns = corrected.saturating_sub(i64::try_from(at_ns).unwrap_or(i64::MAX));
        let worst = worst_by_node.entry(node).or_insert((0, at_ns));
        if error_ns.unsigned_abs() > worst.0.unsigned_abs() {
            *worst = (error_ns, at_ns);
        }
    }
    if judged == 0 {
        return Err(format!("none of the {} clock readings is at or after judge_from", readings.len()));
    }
    let mut anomalies = Vec::new();
    for (&node, &(error_ns, at_ns)) in &worst_by_node {
        if error_ns.unsigned_abs() > max_error_ns {
            anomalies.push(Anomaly::new(
                "clock-error",
                format!(
                    "{}'s clock was {} {} true time at {} (at most {} allowed)",
                    name_of(names, node),
                    time(error_ns.unsigned_abs()),
                    if error_ns > 0 { "ahead of" } else { "behind" },
                    time(at_ns),
                    time(max_error_ns)
                ),
                Vec::new(),
            ));
        }
    }
    let worst = worst_by_node.values().map(|(e, _)| e.unsigned_abs()).max().unwrap_or(0);
    let reason = format!(
        "{judged} readings of {} nodes judged; worst error {} (at most {} allowed)",
        worst_by_node.len(),
        time(worst),
        time(max_error_ns)
    );
    Ok(verdict("clock-sync", readings.len(), anomalies, reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::CheckOptions;
    use crate::units::Duration;
    use detsim_core::{History, NodeId, Op};

    const MS: u64 = 1_000_000;

    fn names(servers: usize) -> Vec<String> {
        (1..=servers).map(|i| format!("n{i}")).collect()
    }

    /// Records measurement event `f(key) = value` at node `node` (index) and `at_ms`.
    fn instant(history: &mut History, at_ms: u64, node: usize, f: &str, key: Value, value: Value) {
        let op = Op::new(f, Some(key), value);
        let name = Some(format!("n{}", node + 1));
        history.push(at_ms * MS, node as u64, EventType::Invoke, op.clone(), None, name.clone());
        history.push(at_ms * MS, node as u64, EventType::Ok, op, None, name);
    }

    /// Runs check `name` on `history` over `servers` servers, with `windows` and `check` options.
    fn judge(
        name: &str,
        history: &History,
        servers: usize,
        windows: &[(&str, u64, Option<u64>)],
        check: &CheckOptions,
    ) -> Result<Verdict, String> {
        judge_with_faults(name, history, servers, windows, &[], check)
    }

    fn judge_with_faults(
        name: &str,
        history: &History,
        servers: usize,
        windows: &[(&str, u64, Option<u64>)],
        faults: &[(u64, Fault)],
        check: &CheckOptions,
    ) -> Result<Verdict, String> {
        let names = names(servers);
        let windows: Vec<(String, u64, Option<u64>)> =
            windows.iter().map(|(k, s, e)| (k.to_string(), s * MS, e.map(|e| e * MS))).collect();
        let mut context = CheckContext::new(history, check);
        context.node_names = &names;
        context.servers = servers;
        context.fault_windows = &windows;
        context.faults = faults;
        context.end_ns = 10_000 * MS;
        context.seed = 1;
        run(name, &context)
    }

    fn anomalies(verdict: &Verdict) -> Vec<&str> {
        verdict.anomalies.iter().map(|a| a.name.as_str()).collect()
    }

    #[test]
    fn broadcast_delivery_needs_every_live_server_within_the_bound() {
        let mut history = History::default();
        instant(&mut history, 100, 0, "broadcast", Value::Int(7), Value::Int(0));
        for (node, at) in [(0, 100), (1, 150), (2, 400)] {
            instant(&mut history, at, node, "deliver", Value::Int(7), Value::Int(1));
        }
        let mut check = CheckOptions::default();
        let verdict = judge("broadcast-delivery", &history, 3, &[], &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        check.deliver_within = Some(Duration::from_millis(200));
        let verdict = judge("broadcast-delivery", &history, 3, &[], &check).expect("judged");
        assert_eq!(anomalies(&verdict), ["undelivered"], "n3 took 300 ms: {verdict}");
        assert!(verdict.anomalies[0].explanation.contains("n3"), "{verdict}");
        // A node that was down during the window is excused.
        let verdict = judge("broadcast-delivery", &history, 3, &[("crash n3", 50, Some(200))], &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        // A fourth server that never delivers is missing, whatever the bound.
        check.deliver_within = None;
        let verdict = judge("broadcast-delivery", &history, 4, &[], &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Invalid, "{verdict}");
        // No broadcasts: nothing to judge.
        assert!(judge("broadcast-delivery", &History::default(), 3, &[], &check).is_err());
    }

    #[test]
    fn failure_detection_judges_completeness_and_accuracy() {
        let mut history = History::default();
        // n3 crashes at 1s; n1 declares it dead at 1.3s, n2 at 1.6s.
        instant(&mut history, 1_300, 0, "dead", Value::Int(2), Value::Int(0));
        instant(&mut history, 1_600, 1, "dead", Value::Int(2), Value::Int(0));
        let crash = [("crash n3", 1_000, Some(5_000))];
        let mut check = CheckOptions { detect_within: Some(Duration::from_millis(700)), ..CheckOptions::default() };
        let verdict = judge("failure-detection", &history, 3, &crash, &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        check.detect_within = Some(Duration::from_millis(500));
        let verdict = judge("failure-detection", &history, 3, &crash, &check).expect("judged");
        assert_eq!(anomalies(&verdict), ["missed-detection"], "n2 was late: {verdict}");
        // A declaration of a node that was up is a false detection; an allowance tolerates it.
        check.detect_within = Some(Duration::from_millis(700));
        instant(&mut history, 7_000, 1, "dead", Value::Int(0), Value::Int(0));
        let verdict = judge("failure-detection", &history, 3, &crash, &check).expect("judged");
        assert_eq!(anomalies(&verdict), ["false-detection"], "{verdict}");
        assert_eq!(verdict.valid, Validity::Invalid);
        check.max_false_detections = Some(1);
        let verdict = judge("failure-detection", &history, 3, &crash, &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        // Shortly after the restart a declaration still counts as true (within detect_within).
        check.max_false_detections = None;
        let mut late = History::default();
        instant(&mut late, 5_500, 0, "dead", Value::Int(2), Value::Int(0));
        let verdict = judge(
            "failure-detection",
            &late,
            3,
            &[("crash n3", 1_000, Some(5_000))],
            &CheckOptions { detect_within: Some(Duration::from_millis(700)), ..CheckOptions::default() },
        );
        let verdict = verdict.expect("judged");
        // Both observers missed the bound, but n1's late declaration is not a false one.
        assert_eq!(anomalies(&verdict), ["missed-detection", "missed-detection"], "{verdict}");
        // Another event name.
        check.detection_event = Some("suspect".into());
        assert!(judge("failure-detection", &history, 3, &[], &check).is_err(), "no suspect events, nothing down");
    }

    #[test]
    fn lookups_must_name_the_owner_among_the_live_nodes() {
        let seed = 1;
        let key = 12_345u32;
        let all = [0u32, 1, 2, 3];
        let owner = detsim_protocols::dht::expected_owner(seed, &all, key);
        let without_owner: Vec<u32> = all.iter().copied().filter(|&n| n != owner).collect();
        let successor = detsim_protocols::dht::expected_owner(seed, &without_owner, key);
        let lookup = |history: &mut History, at_ms: u64, answer: u32| {
            let name = Some("n1".to_string());
            let invoke = Op::new("lookup", Some(Value::Int(i64::from(key))), Value::Nil);
            let ok = Op::new(
                "lookup",
                Some(Value::Int(i64::from(key))),
                Value::List(vec![Value::Int(answer.into()), Value::Int(2)]),
            );
            history.push(at_ms * MS, 0, EventType::Invoke, invoke, None, name.clone());
            history.push(at_ms * MS + MS, 0, EventType::Ok, ok, None, name);
        };
        let mut history = History::default();
        lookup(&mut history, 1_000, owner);
        lookup(&mut history, 6_000, successor); // the owner is down from 5s on
        let down = [(format!("crash n{}", owner + 1), 5_000, None)];
        let windows: Vec<(&str, u64, Option<u64>)> = down.iter().map(|(k, s, e)| (k.as_str(), *s, *e)).collect();
        let check = CheckOptions { settle: Some(Duration::from_millis(500)), ..CheckOptions::default() };
        let verdict = judge("lookups", &history, 4, &windows, &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        // Answering the dead owner is wrong.
        let mut wrong = History::default();
        lookup(&mut wrong, 6_000, owner);
        let verdict = judge("lookups", &wrong, 4, &windows, &check).expect("judged");
        assert_eq!(anomalies(&verdict), ["wrong-owner"], "{verdict}");
        // Within settle of the crash it is not judged.
        let mut early = History::default();
        lookup(&mut early, 5_100, owner);
        assert!(judge("lookups", &early, 4, &windows, &check).is_err(), "nothing judged");
    }

    #[test]
    fn clock_sync_bounds_the_error_of_judged_readings() {
        let reading = |history: &mut History, at_ms: u64, node: usize, error_ms: i64| {
            let corrected = (at_ms * MS) as i64 + error_ms * MS as i64;
            instant(
                history,
                at_ms,
                node,
                "clock",
                Value::Int(node as i64),
                Value::List(vec![Value::Int(corrected), Value::Int(1)]),
            );
        };
        let mut history = History::default();
        reading(&mut history, 100, 1, 40); // before judge_from
        reading(&mut history, 2_000, 1, 2);
        reading(&mut history, 2_000, 2, -3);
        reading(&mut history, 4_100, 2, 30); // just after a clock jump
        let mut check = CheckOptions {
            max_clock_error: Some(Duration::from_millis(5)),
            judge_from: Some(Duration::from_secs(1)),
            settle: Some(Duration::from_millis(500)),
            ..CheckOptions::default()
        };
        let jump = [(4_000 * MS, Fault::ClockJump { node: NodeId(2), by_ns: 30_000_000 })];
        let verdict = judge_with_faults("clock-sync", &history, 3, &[], &jump, &check).expect("judged");
        assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
        let verdict = judge("clock-sync", &history, 3, &[], &check).expect("judged");
        assert_eq!(anomalies(&verdict), ["clock-error"], "without the jump the 30 ms error counts: {verdict}");
        assert!(verdict.anomalies[0].explanation.contains("n3's clock was 30ms ahead"), "{verdict}");
        check.max_clock_error = Some(Duration::from_millis(1));
        let verdict = judge_with_faults("clock-sync", &history, 3, &[], &jump, &check).expect("judged");
        assert_eq!(verdict.anomalies.len(), 2, "{verdict}");
    }
}
