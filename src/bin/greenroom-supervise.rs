//! The process driver's supervisor as a small executable of its own (see
//! `greenroom_driver::supervisor`). `greenroom` uses it when it sits next to
//! its own executable, else re-executes itself with `__supervise`; both run
//! the same `supervise_main`. It must stay a thin wrapper.

fn main() {
    std::process::exit(greenroom_driver::supervise_main(std::env::args_os().skip(1).collect()));
}
