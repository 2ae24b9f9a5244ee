//! The demo target (`src/demo/target.rs`) as an example of its own, for tests and for
//! watching by hand; `aegis demo-target` runs the same code.
//!
//! ```sh
//! cargo run --example http-service -- --http 127.0.0.1:8080 --access-log /tmp/x/access.log
//! ```

use clap::Parser;

fn main() -> std::process::ExitCode {
    aegis::demo::target::main(aegis::demo::target::TargetArgs::parse())
}
