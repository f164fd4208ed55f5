//! Log lines through the host (`-v` shows debug and info; warn and error always show).

#[cfg(target_family = "wasm")]
use crate::bindings::mathison::plugin::host;
use crate::bindings::mathison::plugin::types::LogLevel;

/// Details for the plugin's author.
pub fn debug(message: &str) {
    write(LogLevel::Debug, message);
}

/// What the plugin decided and why.
pub fn info(message: &str) {
    write(LogLevel::Info, message);
}

/// Something the user should know about, although rendering goes on.
pub fn warn(message: &str) {
    write(LogLevel::Warn, message);
}

/// Something went wrong; usually followed by an error result.
pub fn error(message: &str) {
    write(LogLevel::Error, message);
}

#[cfg(target_family = "wasm")]
fn write(level: LogLevel, message: &str) {
    host::log(level, message);
}

// Natively (unit tests) there is no host: wit-bindgen's import stub would hit `unreachable!`.
#[cfg(not(target_family = "wasm"))]
fn write(level: LogLevel, message: &str) {
    eprintln!("[{level:?}] {message}");
}
