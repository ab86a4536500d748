//! The egress proxy against real sockets: servers on 127.0.0.2 (allowed)
//! and 127.0.0.3 (not), a client speaking to the proxy as curl would.

use super::*;
use crate::plan::network::Allowed;
use tokio::net::TcpListener;

/// A proxy allowing `entries` (with `{two}` replaced by the port of a
/// server on 127.0.0.2), its address, and its log's path.
struct Fixture {
    proxy: SocketAddr,
    log: PathBuf,
    _serving: Serving,
    _dir: tempfile::TempDir,
}

fn fixture(entries: &[String]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs").join("1.egress.log");
    let hosts =
        AllowList::new(entries.iter().map(|e| Allowed::parse(e).unwrap()).collect()).unwrap();
    let egress = Arc::new(Egress::new("task `t`", hosts, log.clone()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let serving = egress.serve(listener).unwrap();
    Fixture {
        proxy,
        log,
        _serving: serving,
        _dir: dir,
    }
}

impl Fixture {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `request` to the proxy and reads what comes back until it
    /// closes.
    async fn ask(&self, request: &[u8]) -> String {
        let mut client = TcpStream::connect(self.proxy).await.unwrap();
        client.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer))
            .await
            .expect("the proxy closed the connection");
        String::from_utf8_lossy(&answer).into_owned()
    }
}

/// A server on `ip` that answers one connection: it reads a request head
/// (sent back to the test) and answers `reply`, then closes.
async fn server(ip: &str, reply: &'static str) -> (u16, tokio::sync::oneshot::Receiver<String>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        stream.write_all(reply.as_bytes()).await.unwrap();
    });
    (port, rx)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

#[tokio::test]
async fn plain_http_to_a_listed_host_goes_through_in_origin_form() {
    let (port, head) = server("127.0.0.2", OK).await;
    let f = fixture(&[format!("127.0.0.2:{port}")]);
    let answer = f
        .ask(
            format!(
                "GET http://127.0.0.2:{port}/a/b?c=d HTTP/1.1\r\nHost: 127.0.0.2:{port}\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nX-Mine: 1\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    assert!(answer.ends_with("hello"), "{answer}");
    let head = head.await.unwrap();
    assert!(head.starts_with("GET /a/b?c=d HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("Host: 127.0.0.2:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("X-Mine: 1\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("proxy-"), "{head}");
    assert_eq!(f.log(), format!("allowed GET 127.0.0.2:{port}\n"));
}

#[tokio::test]
async fn a_host_not_listed_is_refused_with_a_message_and_a_log_line() {
    let (allowed, _) = server("127.0.0.2", OK).await;
    let (other, mut reached) = server("127.0.0.3", OK).await;
    let f = fixture(&[format!("127.0.0.2:{allowed}")]);
    let answer = f
        .ask(format!("GET http://127.0.0.3:{other}/ HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(
        answer.ends_with(&format!(
            "\r\n\r\nswarm: task `t` may not reach 127.0.0.3:{other}: only the hosts of its network list [\"127.0.0.2:{allowed}\"] are reachable\n"
        )),
        "{answer}"
    );
    // The same host on another port is another entry.
    let answer = f
        .ask(format!("CONNECT 127.0.0.2:{other} HTTP/1.1\r\n\r\n").as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert_eq!(
        f.log(),
        format!(
            "refused GET 127.0.0.3:{other}: not in the network list [\"127.0.0.2:{allowed}\"]\n\
             refused CONNECT 127.0.0.2:{other}: not in the network list [\"127.0.0.2:{allowed}\"]\n"
        )
    );
    assert!(
        reached.try_recv().is_err(),
        "the refused server was reached"
    );
}

#[tokio::test]
async fn connect_tunnels_bytes_both_ways_including_those_sent_early() {
    let listener = TcpListener::bind(("127.0.0.2", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut got = [0u8; 4];
        stream.read_exact(&mut got).await.unwrap();
        stream.write_all(&got).await.unwrap();
        stream.write_all(b"!").await.unwrap();
    });
    let f = fixture(&[format!("127.0.0.2:{port}")]);
    // The client's first bytes come with the head, as a TLS client's
    // ClientHello may.
    let answer = f
        .ask(
            format!("CONNECT 127.0.0.2:{port} HTTP/1.1\r\nHost: 127.0.0.2:{port}\r\n\r\nping")
                .as_bytes(),
        )
        .await;
    assert_eq!(answer, "HTTP/1.1 200 Connection established\r\n\r\nping!");
    assert_eq!(f.log(), format!("allowed CONNECT 127.0.0.2:{port}\n"));
}

#[tokio::test]
async fn a_name_is_resolved_by_the_proxy_and_its_address_is_not_the_name() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"x").await;
        }
    });
    let f = fixture(&[format!("localhost:{port}")]);
    let answer = f
        .ask(format!("CONNECT localhost:{port} HTTP/1.1\r\n\r\n").as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let answer = f
        .ask(format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n").as_bytes())
        .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
}

#[tokio::test]
async fn what_is_no_proxy_request_gets_a_400_that_says_why() {
    let f = fixture(&["127.0.0.2:80".into()]);
    let mut answers = Vec::new();
    for request in [
        "GET / HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
        "GET https://127.0.0.2/ HTTP/1.1\r\n\r\n",
        "GET ftp://127.0.0.2/ HTTP/1.1\r\n\r\n",
        "CONNECT 127.0.0.2 HTTP/1.1\r\n\r\n",
        "CONNECT 127.1:80 HTTP/1.1\r\n\r\n",
        "GET http://user:pw@127.0.0.2/ HTTP/1.1\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\r\n\r\n",
    ] {
        let answer = f.ask(request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{request:?}: {answer}");
        answers.push(answer);
    }
    insta::assert_snapshot!(answers.join("\n"), @"
    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 143
    Connection: close

    swarm: the egress proxy refuses GET /: this is swarm's egress proxy; it takes requests for http:// URLs (HTTP_PROXY) and CONNECT (HTTPS_PROXY)

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 155
    Connection: close

    swarm: the egress proxy refuses GET https://127.0.0.2/: an https:// URL goes through CONNECT (HTTPS_PROXY), so that TLS runs between the task and the host

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 89
    Connection: close

    swarm: the egress proxy refuses GET ftp://127.0.0.2/: only http:// URLs and CONNECT pass

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 67
    Connection: close

    swarm: the egress proxy refuses CONNECT 127.0.0.2: not `host:port`

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 66
    Connection: close

    swarm: the egress proxy refuses CONNECT 127.1:80: not `host:port`

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 98
    Connection: close

    swarm: the egress proxy refuses GET http://...@127.0.0.2/: credentials in a URL are not passed on

    HTTP/1.1 400 Bad Request
    Content-Type: text/plain; charset=utf-8
    Content-Length: 75
    Connection: close

    swarm: the egress proxy refuses a request that is not HTTP (invalid token)
    ");
    let log = f.log();
    assert_eq!(log.lines().count(), 7, "{log}");
    assert!(log.lines().all(|l| l.starts_with("refused ")), "{log}");
    // The password is not written down.
    assert!(!log.contains("pw"), "{log}");
}

#[tokio::test]
async fn a_head_too_large_or_too_many_headers_is_refused() {
    let f = fixture(&["127.0.0.2:80".into()]);
    let big = format!(
        "GET http://127.0.0.2/ HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(HEAD_LIMIT)
    );
    let answer = f.ask(big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let many = format!(
        "GET http://127.0.0.2/ HTTP/1.1\r\n{}\r\n",
        "X: y\r\n".repeat(MAX_HEADERS + 1)
    );
    let answer = f.ask(many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_no_whole_head_is_closed_in_time() {
    let f = fixture(&["127.0.0.2:80".into()]);
    let mut client = TcpStream::connect(f.proxy).await.unwrap();
    client
        .write_all(b"GET http://127.0.0.2/ HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    // Paused time runs on while everything waits: the proxy's deadline
    // passes, not this one.
    tokio::time::timeout(HEAD_TIMEOUT * 2, client.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{answer:?}");
    insta::assert_snapshot!(f.log(), @"refused a connection that sent no whole request in 30 s");
}

#[test]
fn the_log_stops_at_its_limit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.egress.log");
    let hosts = AllowList::new(vec![Allowed::parse("a.example").unwrap()]).unwrap();
    let egress = Egress::new("t", hosts, path.clone());
    let line = "x".repeat(10_000);
    for _ in 0..(LOG_LIMIT / 10_000 + 10) {
        egress.note(&line);
    }
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(log.len() as u64 <= LOG_LIMIT + 100, "{}", log.len());
    assert!(
        log.ends_with("(nothing more is logged: the egress log reached 1.0 MiB)\n"),
        "{}",
        &log[log.len() - 100..]
    );
    // Another command of the attempt (its verify) logs to the same file,
    // and the limit is the file's.
    let path = dir.path().join("2.egress.log");
    std::fs::write(&path, "y".repeat(LOG_LIMIT as usize - 20)).unwrap();
    let hosts = AllowList::new(vec![Allowed::parse("a.example").unwrap()]).unwrap();
    let verify = Egress::new("t", hosts, path.clone());
    verify.note("a line of more than twenty bytes");
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(log.ends_with("yy(nothing more is logged: the egress log reached 1.0 MiB)\n"));
}

#[test]
fn a_host_the_task_names_is_escaped_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("1.egress.log");
    let hosts = AllowList::new(vec![Allowed::parse("a.example").unwrap()]).unwrap();
    let egress = Egress::new("t", hosts, path.clone());
    egress.note("refused GET \x1b[31mred");
    let log = std::fs::read_to_string(&path).unwrap();
    assert!(!log.contains('\x1b'), "{log:?}");
}

#[test]
fn the_environment_sends_http_and_https_through_the_proxy() {
    let vars = env("http://127.0.0.1:3128", "");
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        assert!(
            vars.contains(&(name.to_string(), "http://127.0.0.1:3128".to_string())),
            "{name}"
        );
    }
    assert!(vars.contains(&("NO_PROXY".to_string(), String::new())));
    assert!(vars.contains(&("no_proxy".to_string(), String::new())));
}
