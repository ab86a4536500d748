//! A guest's stdout or stderr: written to the task's log file up to a
//! limit, the rest counted and dropped. Unlike wasmtime's in-memory pipe,
//! it never reports itself closed when full, so a guest that prints too
//! much keeps running normally instead of failing on its next print.

use std::fs::File;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::output::Budget;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

struct State {
    file: File,
    budget: Budget,
    /// The person's secrets taken out as the output comes (see
    /// [`crate::redact`]).
    redacting: Option<crate::redact::Stream>,
}

/// One output stream of a guest. Clones share the file and the counts
/// (WASI preview 2 may ask for the stream more than once).
#[derive(Clone)]
pub(crate) struct Sink(Arc<Mutex<State>>);

impl Sink {
    pub(crate) fn new(file: File, limit: u64, redact: Option<&crate::redact::Redact>) -> Self {
        Self(Arc::new(Mutex::new(State {
            file,
            budget: Budget::new(limit),
            redacting: redact.map(crate::redact::Redact::stream),
        })))
    }

    fn push(&self, buf: &[u8]) -> std::io::Result<()> {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let take = s.budget.take(buf.len());
        if take == 0 {
            return Ok(());
        }
        let written = match s.redacting.as_mut().map(|r| r.push(&buf[..take])) {
            Some(redacted) => s.file.write_all(&redacted),
            None => s.file.write_all(&buf[..take]),
        };
        if let Err(e) = written {
            s.budget.unkeep(take);
            return Err(e);
        }
        Ok(())
    }

    /// Ends the log with a line saying how much was dropped, if anything
    /// was (the same line as for command tasks).
    pub(crate) fn finish(&self) {
        let mut s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = s.redacting.take().map(crate::redact::Stream::finish) {
            let _ = s.file.write_all(&held);
        }
        if let Some(note) = s.budget.note() {
            let _ = s.file.write_all(note.as_bytes());
        }
    }
}

impl IsTerminal for Sink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Sink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sink {
    async fn ready(&mut self) {}
}

impl OutputStream for Sink {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Never 0: a full log drops output, it does not block the guest.
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for Sink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.push(buf).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
