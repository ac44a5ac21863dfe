use detsim_plot::demo::{write_demo_run, DemoConfig, Mode};
#[test]
fn smoke() {
    let dir = std::path::PathBuf::from("/tmp/plotdemo/cp");
    write_demo_run(&dir, &DemoConfig::default()).unwrap();
    let t = std::time::Instant::now();
    let s = detsim_plot::render_run(&dir, &detsim_plot::RenderOptions { png: true, ..Default::default() }).unwrap();
    eprintln!("render {:?} bytes {}", t.elapsed(), s.report_bytes);
    let dir2 = std::path::PathBuf::from("/tmp/plotdemo/ap");
    write_demo_run(&dir2, &DemoConfig { mode: Mode::Ap, ..DemoConfig::default() }).unwrap();
    detsim_plot::render_report(&dir2).unwrap();
    detsim_plot::render_cap_comparison(&[dir.clone(), dir2.clone()], std::path::Path::new("/tmp/plotdemo/cap.svg"), true).unwrap();
}
