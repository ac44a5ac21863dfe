//! `cargo xtask`: project automation (ci, bench, plots).

fn main() {
    eprintln!("usage: cargo xtask ci | bench");
    std::process::exit(2);
}
