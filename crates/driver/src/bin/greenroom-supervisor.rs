//! Stand-alone supervisor binary used by this crate's tests (production
//! re-executes the greenroom binary with its hidden `__supervise` subcommand).
//! It must stay a thin wrapper: all behaviour lives in `supervise_main`.

fn main() {
    std::process::exit(greenroom_driver::supervise_main(std::env::args_os().skip(1).collect()));
}
