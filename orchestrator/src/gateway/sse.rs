//! Server-sent events split out of a byte stream as it arrives, for
//! what reads an answer on its way past (the door, a cassette's recorder)
//! rather than consuming it.

/// Splits an SSE byte stream into events (name, data), across chunks.
#[derive(Debug, Default)]
pub(crate) struct Events {
    buffer: Vec<u8>,
}

impl Events {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buffer.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let text = &self.buffer;
            let lf = text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
            let crlf = text
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4));
            let end = match (lf, crlf) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            let Some((at, len)) = end else { break };
            let block = String::from_utf8_lossy(&self.buffer[..at]).into_owned();
            self.buffer.drain(..at + len);
            let (mut event, mut data) = (String::new(), Vec::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                }
            }
            if !data.is_empty() {
                out.push((event, data.join("\n")));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_across_chunks() {
        let mut events = Events::default();
        assert!(events.push(b"event: a\ndata: {\"x\"").is_empty());
        let got = events.push(b":1}\n\nevent: b\r\ndata: 2\r\n\r\ndata: 3\n\n");
        assert_eq!(
            got,
            vec![
                ("a".to_string(), "{\"x\":1}".to_string()),
                ("b".to_string(), "2".to_string()),
                (String::new(), "3".to_string()),
            ]
        );
    }
}
