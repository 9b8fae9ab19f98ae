//! Fuzzes the PR comment-command parser: any bytes, as a comment body, must
//! parse without panicking and keep the invariants that
//! `greenroom_core::command::fuzz_one` checks.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    greenroom_core::command::fuzz_one(data);
});
