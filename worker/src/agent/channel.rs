//! The agent's end of its channel to the coordinator: JSON lines over the
//! Unix socket it inherited, read and written with blocking calls (the
//! agent is single-threaded and does one thing at a time).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use swarm_protocol::agent::{AgentMessage, CoordinatorMessage};

/// Why the channel failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("talk to the coordinator: {0}")]
    Io(#[from] std::io::Error),
    #[error("talk to the coordinator: it closed the channel")]
    Closed,
    #[error("read the coordinator's message: {0}")]
    Unreadable(#[from] serde_json::Error),
}

pub(crate) struct Channel {
    read: BufReader<UnixStream>,
    write: UnixStream,
    line: String,
}

impl Channel {
    pub fn new(stream: UnixStream) -> Result<Self, ChannelError> {
        let write = stream.try_clone()?;
        Ok(Self {
            read: BufReader::new(stream),
            write,
            line: String::new(),
        })
    }

    pub fn send(&mut self, message: &AgentMessage) -> Result<(), ChannelError> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.write.write_all(&line)?;
        Ok(())
    }

    pub fn recv(&mut self) -> Result<CoordinatorMessage, ChannelError> {
        self.line.clear();
        if self.read.read_line(&mut self.line)? == 0 {
            return Err(ChannelError::Closed);
        }
        Ok(serde_json::from_str(&self.line)?)
    }
}
