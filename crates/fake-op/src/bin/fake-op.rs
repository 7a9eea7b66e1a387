//! `fake-op`: behaves as `op` v2 against the state in `$FAKE_OP_HOME`.

fn main() {
    // Go's runtime exits 2 on a panic (docs/op-behaviour.md §8); so do we, with Go's first line.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
        std::process::exit(2);
    }));
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(fake_op::invocation::main(argv));
}
