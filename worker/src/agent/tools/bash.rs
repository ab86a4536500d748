//! The bash tool: one shell command in the worktree, with a timeout, its
//! output bounded, and nothing it started left running afterwards.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::input::Input;
use super::paths::Root;
use super::reap;

/// Bytes kept from the start of a command's output, and from its end.
const KEEP: usize = 16 * 1024;
/// How long the output is still read once every process of the command is
/// dead. Only a process that escaped [`reap`] (one reparented elsewhere
/// because the agent is not a subreaper) can still hold the pipe then; the
/// call must not wait on it.
const DRAIN: Duration = Duration::from_secs(2);

/// Makes the agent the child subreaper of everything its commands start, so
/// that a command's orphaned background processes are reparented to the
/// agent, where [`reap`] can find and kill them. Call once at agent start.
pub fn become_subreaper() -> io::Result<()> {
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
}

/// Runs the `command` of `input`; `max` is the longest it may run. `Err`
/// carries the text of a failed call (timeout, could not start), which
/// includes any output the command gave.
pub(crate) fn bash(root: &Root, input: &Input, max: Duration) -> Result<String, String> {
    let command = input.string("command")?;
    let timeout = match input.opt_seconds("timeout")? {
        Some(secs) => Duration::try_from_secs_f64(secs).map_or(max, |asked| asked.min(max)),
        None => max,
    };
    let mut mark = reap::Mark::new();
    let (mut child, output) =
        start(root, command, &mut mark).map_err(|e| format!("could not start /bin/sh: {e}"))?;

    let ending = wait(&mut child, timeout);
    match &ending {
        Ending::Exited(_) => reap::kill_leftovers(&mark, None),
        Ending::TimedOut | Ending::Lost(_) => {
            // The shell first: killed after its foreground job, it would
            // have a moment to report the job ("Killed") into the output.
            let _ = child.kill();
            reap::kill_leftovers(&mark, Some(child.id()));
            let _ = child.wait();
        }
    }
    let drained = output.done.recv_timeout(DRAIN).is_ok();
    let mut text = output
        .capture
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .render();
    if !drained {
        text.push_str("\n[output may be cut short: a process that outlived the command still holds its output]");
    }

    match ending {
        Ending::Exited(status) => Ok(format!("{}{}", describe(status), body(&text))),
        Ending::TimedOut => Err(format!(
            "timed out after {}, killed{}",
            seconds(timeout),
            body(&text)
        )),
        Ending::Lost(e) => Err(format!("lost track of the command: {e}{}", body(&text))),
    }
}

/// What reads the command's output.
struct Output {
    capture: Arc<Mutex<Capture>>,
    /// Sent to when the output reached its end.
    done: mpsc::Receiver<()>,
}

/// Spawns `sh -c command` with stdout and stderr on one pipe, and a thread
/// reading that pipe.
fn start(root: &Root, command: &str, mark: &mut reap::Mark) -> io::Result<(Child, Output)> {
    let (mut reader, writer) = io::pipe()?;
    mark.pipe(&writer);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&root.real)
        .env(reap::TAG_VAR, &mark.tag)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    // (Not while the leftovers of another command are looked for.)
    let spawned = {
        let _spawning = reap::spawning();
        cmd.spawn()
    };
    // The command holds our copies of the pipe's write end; while they are
    // open the reader would never see the end of the output.
    drop(cmd);
    let mut child = spawned?;

    let capture = Arc::new(Mutex::new(Capture::default()));
    let (done_tx, done) = mpsc::channel();
    let sink = Arc::clone(&capture);
    let reading = thread::Builder::new()
        .name("bash-output".to_owned())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = done_tx.send(());
        });
    if let Err(e) = reading {
        let _ = child.kill();
        let _ = child.wait();
        reap::kill_leftovers(mark, None);
        return Err(e);
    }
    Ok((child, Output { capture, done }))
}

enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Lost(io::Error),
}

/// Waits for the shell to exit, polling: a waiting thread would reap it and
/// free its pid while the timeout path may still have to signal it.
fn wait(child: &mut Child, timeout: Duration) -> Ending {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ending::Exited(status),
            Ok(None) => {}
            Err(e) => return Ending::Lost(e),
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ending::TimedOut;
        }
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) => match nix::sys::signal::Signal::try_from(signal) {
            Ok(name) => format!("killed by signal {signal} ({})", name.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        None => format!("ended with status {status}"),
    }
}

/// The output as it follows the status line.
fn body(text: &str) -> String {
    if text.is_empty() {
        " (no output)".to_owned()
    } else {
        format!("\n{text}")
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The start and the end of a stream of any length, in bounded memory.
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let room = KEEP.saturating_sub(self.head.len()).min(data.len());
        self.head.extend_from_slice(&data[..room]);
        let rest = &data[room..];
        let rest = &rest[rest.len().saturating_sub(KEEP)..];
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
    }

    fn render(&self) -> String {
        let kept = self.head.len() + self.tail.len();
        let dropped = self.total - kept as u64;
        let mut bytes = self.head.clone();
        if dropped > 0 {
            bytes.extend_from_slice(
                format!("\n[... {dropped} bytes of output omitted ...]\n").as_bytes(),
            );
        }
        bytes.extend(&self.tail);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
#[path = "bash_tests.rs"]
mod tests;
