//! `fake-op-ctl`: load fixtures, move the clock, revoke, lock the app, answer prompts, read
//! counters and the call log. See `fake_op::ctl` for the commands.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let home = fake_op::store::home_dir();
    match fake_op::ctl::run(&home, &args) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("fake-op-ctl: {e}");
            std::process::exit(1);
        }
    }
}
