//! `cargo xtask plots` regenerates the rendered charts docs/plots.md shows (docs/img/*.png) from the
//! curated scenarios, through the `detsim` binary as a user runs it; `cargo xtask report-check` opens
//! a report.html in headless Chromium (through chromedriver's WebDriver API) and fails on console
//! errors, network requests or a blank page. Both stay out of `cargo xtask ci`: the browser check
//! installs Debian's chromium and chromium-driver packages with apt-get when they are missing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the `detsim` binary (dev profile) and returns its path.
fn build_detsim() -> Result<PathBuf, String> {
    eprintln!("xtask: cargo build -p detsim");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--package", "detsim", "--bin", "detsim"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building detsim failed".into());
    }
    Ok(target_dir().join("debug").join(format!("detsim{}", std::env::consts::EXE_SUFFIX)))
}

/// Runs `detsim ARGS` from the workspace root; exit codes 0 and 1 (a scenario's outcome) are fine,
/// anything else is an error with detsim's message.
fn detsim(binary: &Path, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: detsim {}", args.join(" "));
    let output = Command::new(binary)
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    match output.status.code() {
        Some(0 | 1) => Ok(()),
        _ => Err(format!(
            "detsim {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
    }
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str().ok_or_else(|| format!("{}: not UTF-8", path.display()))
}

/// A curated scenario and the charts of its run that docs/plots.md shows.
struct Showcase {
    file: &'static str,
    /// Image name prefix in docs/img.
    name: &'static str,
    charts: &'static [&'static str],
}

const SHOWCASES: &[Showcase] = &[
    Showcase {
        file: "scenarios/quickstart.toml",
        name: "quickstart",
        charts: &[
            "latency",
            "latency-quantiles",
            "latency-cdf",
            "throughput",
            "availability",
            "messages-per-op",
            "lamport",
            "lamport-fault-start",
        ],
    },
    Showcase { file: "scenarios/lamport-diagram.toml", name: "lamport-diagram", charts: &["lamport"] },
];

/// Pairs of curated scenarios for the CAP comparison (CP first); the first pair that exists is used,
/// else the demo register's CP and AP runs.
const CAP_PAIRS: &[(&str, &str)] = &[
    ("scenarios/cap-cp-raft.toml", "scenarios/cap-ap-dynamo.toml"),
    ("scenarios/cp-vs-ap-raft.toml", "scenarios/cp-vs-ap-dynamo.toml"),
    ("scenarios/cap-cp.toml", "scenarios/cap-ap.toml"),
];

/// The scenario swept for the sweep charts, and its seeds.
const SWEEP: (&str, &str) = ("scenarios/quickstart.toml", "1..25");
/// Seeds of the sweep over the CAP pair (the sweep-driven CAP comparison).
const CAP_SWEEP_SEEDS: &str = "1..21";

/// `cargo xtask plots`: runs the curated scenarios and writes the charts docs/plots.md shows into
/// docs/img.
pub fn plots(args: &[String]) -> Result<ExitCode, String> {
    if let Some(unknown) = args.first() {
        return Err(format!("cargo xtask plots takes no arguments, got {unknown:?}"));
    }
    let root = workspace_root();
    let binary = build_detsim()?;
    let work = target_dir().join("xtask-plots");
    fresh_dir(&work)?;
    let img = root.join("docs").join("img");
    std::fs::create_dir_all(&img).map_err(|e| format!("{}: {e}", img.display()))?;
    let mut written = Vec::new();

    for showcase in SHOWCASES {
        if !root.join(showcase.file).exists() {
            eprintln!("xtask: {} does not exist; skipped", showcase.file);
            continue;
        }
        let run_dir = work.join(showcase.name);
        detsim(&binary, &["run", showcase.file, "--out", path_str(&run_dir)?, "--no-report"])?;
        detsim(&binary, &["plot", path_str(&run_dir)?, "--png"])?;
        for chart in showcase.charts {
            let from = run_dir.join("plots").join(format!("{chart}.png"));
            let to = img.join(format!("{}-{chart}.png", showcase.name));
            copy(&from, &to)?;
            written.push(to);
        }
    }

    let cap_dir = work.join("cap");
    let pair = CAP_PAIRS.iter().find(|(cp, ap)| root.join(cp).exists() && root.join(ap).exists());
    let (cp_dir, ap_dir) = (work.join("cap-cp"), work.join("cap-ap"));
    match pair {
        Some((cp, ap)) => {
            detsim(&binary, &["run", cp, "--out", path_str(&cp_dir)?, "--no-report"])?;
            detsim(&binary, &["run", ap, "--out", path_str(&ap_dir)?, "--no-report"])?;
        }
        None => {
            eprintln!("xtask: no curated CP/AP scenario pair yet; the CAP comparison uses the demo register");
            for (mode, dir) in [(detsim_plot::demo::Mode::Cp, &cp_dir), (detsim_plot::demo::Mode::Ap, &ap_dir)] {
                let config = detsim_plot::demo::DemoConfig { mode, ..detsim_plot::demo::DemoConfig::default() };
                detsim_plot::demo::write_demo_run(dir, &config).map_err(|e| e.to_string())?;
            }
        }
    }
    detsim(&binary, &["plot", "--cap", path_str(&cp_dir)?, path_str(&ap_dir)?, "--png", "--out", path_str(&cap_dir)?])?;
    let to = img.join("cap-comparison.png");
    copy(&cap_dir.join("cap-comparison.png"), &to)?;
    written.push(to);
    if let Some((cp, ap)) = pair {
        // The comparison driven by a sweep over the two scenarios.
        let (cp_results, ap_results) = (work.join("cap-cp.sweep.jsonl"), work.join("cap-ap.sweep.jsonl"));
        for (file, results) in [(cp, &cp_results), (ap, &ap_results)] {
            detsim(&binary, &["sweep", file, "--seeds", CAP_SWEEP_SEEDS, "--out", path_str(results)?, "--fresh"])?;
        }
        let sweep_cap_dir = work.join("cap-sweep");
        detsim(
            &binary,
            &[
                "plot",
                "--cap",
                path_str(&cp_results)?,
                path_str(&ap_results)?,
                "--png",
                "--out",
                path_str(&sweep_cap_dir)?,
            ],
        )?;
        let to = img.join("cap-sweep.png");
        copy(&sweep_cap_dir.join("cap-comparison.png"), &to)?;
        written.push(to);
    }

    if root.join(SWEEP.0).exists() {
        let results = work.join("sweep.jsonl");
        detsim(&binary, &["sweep", SWEEP.0, "--seeds", SWEEP.1, "--out", path_str(&results)?, "--fresh"])?;
        let sweep_dir = work.join("sweep");
        detsim(
            &binary,
            &[
                "plot",
                "--sweep",
                path_str(&results)?,
                "--metric",
                "availability",
                "--metric",
                "latency_ns.p99",
                "--png",
                "--out",
                path_str(&sweep_dir)?,
            ],
        )?;
        for chart in ["sweep-outcomes", "sweep-availability", "sweep-latency_ns-p99"] {
            let to = img.join(format!("{chart}.png"));
            copy(&sweep_dir.join(format!("{chart}.png")), &to)?;
            written.push(to);
        }
    }
    println!("wrote {} charts:", written.len());
    for file in &written {
        println!("  {}", file.strip_prefix(&root).unwrap_or(file).display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The Chromium flags of the check: headless, sandbox-free (containers), and nothing that talks to
/// the network on its own.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1600",
];

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Finds chromium and chromedriver, installing Debian's packages with apt-get when missing.
fn ensure_chromium() -> Result<(PathBuf, PathBuf), String> {
    let find = || (find_binary(&["chromium", "chromium-browser"]), find_binary(&["chromedriver"]));
    if let (Some(browser), Some(driver)) = find() {
        return Ok((browser, driver));
    }
    eprintln!("xtask: chromium or chromedriver missing: apt-get install chromium chromium-driver");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    let installed = install().map(|s| s.success()).unwrap_or(false);
    if !installed {
        let updated = Command::new("apt-get").arg("update").status().map(|s| s.success()).unwrap_or(false);
        if !updated || !install().map(|s| s.success()).unwrap_or(false) {
            return Err("could not install chromium and chromium-driver with apt-get (run as root on Debian, \
                        or install them yourself)"
                .into());
        }
    }
    match find() {
        (Some(browser), Some(driver)) => Ok((browser, driver)),
        _ => Err("chromium and chromedriver are installed but not on PATH".into()),
    }
}

/// One HTTP/1.1 request to chromedriver on localhost, JSON in and out. (A dozen lines of HTTP to a
/// local process does not justify an HTTP client dependency in xtask.)
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("chromedriver: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("chromedriver: {e}"))?;
    // Read the head, then exactly Content-Length bytes (chromedriver keeps the connection open).
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut buffer).map_err(|e| format!("chromedriver: {e}"))?;
        if read == 0 {
            return Err("chromedriver: the connection closed before the headers ended".into());
        }
        response.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .transpose()
        .map_err(|e| format!("chromedriver: a bad Content-Length: {e}"))?;
    loop {
        let done = match length {
            Some(length) => response.len() >= head_end + length,
            None => false,
        };
        if done {
            break;
        }
        let read = stream.read(&mut buffer).map_err(|e| format!("chromedriver: {e}"))?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
    }
    let body = String::from_utf8_lossy(&response[head_end..]).into_owned();
    let payload = if head.contains("transfer-encoding: chunked") { dechunk(&body)? } else { body };
    let value: Value =
        serde_json::from_str(&payload).map_err(|e| format!("chromedriver sent no JSON ({e}): {payload}"))?;
    if let Some(error) = value["value"]["error"].as_str() {
        return Err(format!("{method} {path}: {error}: {}", value["value"]["message"].as_str().unwrap_or("")));
    }
    Ok(value)
}

fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").ok_or("a malformed chunk")?;
        let size = usize::from_str_radix(size.trim(), 16).map_err(|e| format!("a malformed chunk size: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..size).ok_or("a short chunk")?);
        body = rest.get(size + 2..).ok_or("a short chunk")?;
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Ok(c - b'A'),
        b'a'..=b'z' => Ok(c - b'a' + 26),
        b'0'..=b'9' => Ok(c - b'0' + 52),
        b'+' => Ok(62),
        b'/' => Ok(63),
        _ => Err(format!("not base64: {:?}", c as char)),
    };
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut word: u32 = 0;
        for (i, &c) in chunk.iter().enumerate() {
            word |= u32::from(value(c)?) << (18 - 6 * i);
        }
        let produced = chunk.len() * 6 / 8;
        out.extend_from_slice(&word.to_be_bytes()[1..1 + produced]);
    }
    Ok(out)
}

/// A running chromedriver and its browser session; both end when this is dropped.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: PathBuf,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Result<Browser, String> {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let mut browser = Browser { driver, port, session: String::new(), _profile: profile.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match http(port, "GET", "/status", None) {
                Ok(status) if status["value"]["ready"].as_bool() == Some(true) => break,
                _ if Instant::now() > deadline => return Err("chromedriver did not become ready in 20 s".into()),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        fresh_dir(profile)?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created = http(port, "POST", "/session", Some(&capabilities))?;
        browser.session = created["value"]["sessionId"].as_str().ok_or("no session id")?.to_string();
        Ok(browser)
    }

    fn call(&self, method: &str, command: &str, body: Option<&Value>) -> Result<Value, String> {
        http(self.port, method, &format!("/session/{}/{command}", self.session), body)
    }

    /// The browser console's entries since the last call (level, message).
    fn console(&self) -> Result<Vec<(String, String)>, String> {
        let logs = self.call("POST", "se/log", Some(&json!({"type": "browser"})))?;
        Ok(logs["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (e["level"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// What the page showed.
#[derive(Debug)]
struct PageCheck {
    problems: Vec<String>,
    console: Vec<(String, String)>,
    facts: Value,
}

/// What the check asks the page (after load): visible text, SVG sizes, resources fetched.
const PAGE_FACTS: &str = r#"
const svgs = Array.from(document.querySelectorAll('svg'));
const sized = svgs.filter(s => { const r = s.getBoundingClientRect(); return r.width > 50 && r.height > 50; });
const texts = svgs.reduce((n, s) => n + s.querySelectorAll('text').length, 0);
return {
  ready: document.readyState,
  title: document.title,
  text_chars: (document.body ? document.body.innerText : '').trim().length,
  body_height: document.body ? document.body.scrollHeight : 0,
  svgs: svgs.length,
  sized_svgs: sized.length,
  svg_texts: texts,
  resources: performance.getEntriesByType('resource').map(r => r.name),
  page_width: document.documentElement.scrollWidth,
  window_width: document.documentElement.clientWidth,
};
"#;

fn check_page(browser: &Browser, page: &Path, expected_svgs: usize) -> Result<PageCheck, String> {
    let url = format!("file://{}", page.canonicalize().map_err(|e| format!("{}: {e}", page.display()))?.display());
    browser.console()?; // drop anything logged before this page
    browser.call("POST", "url", Some(&json!({"url": url})))?;
    let facts =
        browser.call("POST", "execute/sync", Some(&json!({"script": PAGE_FACTS, "args": []})))?["value"].clone();
    let console = browser.console()?;
    let mut problems = Vec::new();
    for (level, message) in &console {
        if level == "SEVERE" || level == "WARNING" {
            problems.push(format!("console {level}: {message}"));
        }
    }
    let number = |name: &str| facts[name].as_u64().unwrap_or(0);
    if number("text_chars") < 200 {
        problems.push(format!("blank page: {} characters of visible text", number("text_chars")));
    }
    if number("body_height") < 400 {
        problems.push(format!("blank page: the body is {} px tall", number("body_height")));
    }
    if (number("sized_svgs") as usize) < expected_svgs {
        problems.push(format!("{} of {expected_svgs} charts are drawn with a visible size", number("sized_svgs")));
    }
    if number("page_width") > number("window_width") + 1 {
        problems.push(format!(
            "the page is wider than the window ({} px > {} px): something does not wrap",
            number("page_width"),
            number("window_width")
        ));
    }
    if let Some(resources) = facts["resources"].as_array().filter(|r| !r.is_empty()) {
        problems.push(format!("the page fetched {} resources: {resources:?}", resources.len()));
    }
    Ok(PageCheck { problems, console, facts })
}

/// `cargo xtask report-check [REPORT.html | RUN_DIR]`: renders (or takes) a report.html, opens it in
/// headless Chromium and fails on console errors, fetched resources, a blank page or a page wider than
/// the window. First it proves it can see those: a deliberately broken page, a blank one and a wide
/// one must fail.
pub fn report_check(args: &[String]) -> Result<ExitCode, String> {
    let work = target_dir().join("xtask-report-check");
    fresh_dir(&work)?;
    let report = match args {
        [] => {
            let binary = build_detsim()?;
            let run_dir = work.join("quickstart");
            if workspace_root().join("scenarios/quickstart.toml").exists() {
                detsim(&binary, &["run", "scenarios/quickstart.toml", "--out", path_str(&run_dir)?])?;
            } else {
                detsim_plot::demo::write_demo_run(&run_dir, &detsim_plot::demo::DemoConfig::default())
                    .map_err(|e| e.to_string())?;
                detsim(&binary, &["plot", path_str(&run_dir)?])?;
            }
            run_dir.join("report.html")
        }
        [path] if Path::new(path).is_dir() => Path::new(path).join("report.html"),
        [path] => PathBuf::from(path),
        _ => return Err("usage: cargo xtask report-check [REPORT.html | RUN_DIR]".into()),
    };
    let html = std::fs::read_to_string(&report).map_err(|e| format!("{}: {e}", report.display()))?;
    let expected_svgs = html.matches("<svg").count();

    let (chromium, chromedriver) = ensure_chromium()?;
    let browser = Browser::start(&chromium, &chromedriver, &work.join("profile"))?;

    // The check must be able to fail: a page with a console error and a missing image, and a blank one.
    let broken = work.join("broken.html");
    std::fs::write(&broken, "<!DOCTYPE html><html><body><p>broken</p><img src=\"missing.png\"><script>console.error('deliberate error')</script></body></html>")
        .map_err(|e| e.to_string())?;
    let blank = work.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").map_err(|e| e.to_string())?;
    let broken_check = check_page(&browser, &broken, 0)?;
    if !broken_check.problems.iter().any(|p| p.contains("deliberate error")) {
        return Err(format!(
            "self-test: the check did not see a console error on {}: {broken_check:?}",
            broken.display()
        ));
    }
    let blank_check = check_page(&browser, &blank, 0)?;
    if !blank_check.problems.iter().any(|p| p.starts_with("blank page")) {
        return Err(format!("self-test: the check did not see that {} is blank: {blank_check:?}", blank.display()));
    }
    let wide = work.join("wide.html");
    std::fs::write(&wide, format!("<!DOCTYPE html><html><body><h1>{}</h1></body></html>", "unbroken".repeat(80)))
        .map_err(|e| e.to_string())?;
    let wide_check = check_page(&browser, &wide, 0)?;
    if !wide_check.problems.iter().any(|p| p.starts_with("the page is wider")) {
        return Err(format!("self-test: the check did not see that {} overflows: {wide_check:?}", wide.display()));
    }
    eprintln!("xtask: self-test: a console error, a blank page and a page wider than the window are caught");

    let check = check_page(&browser, &report, expected_svgs)?;
    // Screenshots of the top of the page and of the charts, to look at.
    let mut screenshots = Vec::new();
    for (name, element) in [("top", None), ("charts", Some("latency")), ("lamport", Some("lamport"))] {
        if let Some(id) = element {
            let script =
                format!("const e = document.getElementById('{id}'); if (e) {{ e.scrollIntoView(); }} return !!e;");
            browser.call("POST", "execute/sync", Some(&json!({"script": script, "args": []})))?;
        }
        let screenshot = browser.call("GET", "screenshot", None)?;
        let png = base64_decode(screenshot["value"].as_str().unwrap_or(""))?;
        let path = work.join(format!("report-{name}.png"));
        std::fs::write(&path, png).map_err(|e| format!("{}: {e}", path.display()))?;
        screenshots.push(path);
    }
    drop(browser);

    println!("report       {}", report.display());
    println!(
        "page         {} characters of text, {} px tall, {} of {} charts drawn, {} SVG text labels, {} console entries",
        check.facts["text_chars"],
        check.facts["body_height"],
        check.facts["sized_svgs"],
        expected_svgs,
        check.facts["svg_texts"],
        check.console.len()
    );
    for path in &screenshots {
        println!("screenshot   {}", path.display());
    }
    if check.problems.is_empty() {
        println!("report-check: ok (no console errors, no network, not blank)");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &check.problems {
            println!("report-check: FAIL: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_chunked_bodies_decode() {
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ=").expect("valid"), b"hello world");
        assert_eq!(base64_decode("iVBORw0KGgo=").expect("valid"), b"\x89PNG\r\n\x1a\n");
        assert!(base64_decode("a$b").is_err());
        assert_eq!(dechunk("4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n").expect("valid"), "Wikipedia");
        assert!(dechunk("zz\r\n").is_err());
    }
}
