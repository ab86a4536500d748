//! `network = ["host:port", ...]`: a task reaches the hosts of its list
//! through the coordinator's egress proxy, and nothing else. Servers on
//! 127.0.0.2 (listed) and 127.0.0.3 (not) stand for the internet: the
//! proxy runs in the coordinator, on the host's network, so it reaches
//! both; the task, in a network namespace of its own, reaches neither but
//! through the proxy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, redact, stable_stderr, task};

/// An HTTP server on `ip` that answers every request with `body`, and
/// counts the connections it got.
fn http_server(ip: &str, body: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

/// A TLS server on 127.0.0.2 with a certificate made for it (python3's
/// `ssl` and `http.server`, `openssl` for the certificate: both installed
/// by `.ci/run`), serving `dir`; killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> Self {
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=127.0.0.2", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .expect("run openssl (.ci/run installs it)");
        assert!(made.status.success(), "{made:?}");
        let script = "import http.server, ssl, sys\n\
             httpd = http.server.HTTPServer(('127.0.0.2', 0), http.server.SimpleHTTPRequestHandler)\n\
             ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
             ctx.load_cert_chain('cert.pem', 'key.pem')\n\
             httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)\n\
             print(httpd.server_address[1], flush=True)\n\
             httpd.serve_forever()\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the TLS server's port");
        Self { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Shell prelude: `try NAME CMD...` records whether CMD succeeded.
const PRELUDE: &str = r#"R="$PWD/tries.txt"
try() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "ALLOWED $n" >> "$R"; else echo "denied $n" >> "$R"; fi; }
"#;

#[test]
fn a_network_list_lets_its_host_through_the_proxy_and_nothing_else() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let (two, two_hits) = http_server("127.0.0.2", "hello from two\n");
    let (other_two, other_two_hits) = http_server("127.0.0.2", "not this port\n");
    let (three, three_hits) = http_server("127.0.0.3", "secret of three\n");
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "hello over tls\n").unwrap();
    let tls = TlsServer::start(site.path());
    let udp = UdpSocket::bind("127.0.0.2:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let py = |code: &str| format!("python3 -c \"{code}\"");
    let script = [
        PRELUDE.to_string(),
        // Through the proxy: the listed host, plain and over TLS.
        format!("curl -sS -f -m 10 http://127.0.0.2:{two}/ > two.txt"),
        format!("curl -sS -f -k -m 10 https://127.0.0.2:{}/ > tls.txt", tls.port),
        // Python's own client honours the variables too.
        py(&format!(
            "import urllib.request; open('py.txt', 'wb').write(urllib.request.urlopen('http://127.0.0.2:{two}/').read())"
        )),
        // What the proxy refuses, with its reason in the answer.
        format!("curl -sS -m 10 http://127.0.0.3:{three}/ > refused.txt"),
        format!("try proxy-other-host curl -sS -f -m 10 http://127.0.0.3:{three}/"),
        format!("try proxy-other-port curl -sS -f -m 10 http://127.0.0.2:{other_two}/"),
        format!("try proxy-connect-other curl -sS -f -k -m 10 https://127.0.0.3:{three}/"),
        // Around the proxy: raw TCP, UDP, DNS, raw sockets.
        format!("try curl-direct curl -sS -f -m 5 --noproxy '*' http://127.0.0.2:{two}/"),
        format!(
            "try tcp-direct {}",
            py(&format!(
                "import socket; socket.create_connection(('127.0.0.2', {two}), 3)"
            ))
        ),
        format!(
            "try tcp-other-host {}",
            py(&format!(
                "import socket; socket.create_connection(('127.0.0.3', {three}), 3)"
            ))
        ),
        format!(
            "try tcp-proxy-port-elsewhere {}",
            py("import socket; socket.create_connection(('127.0.0.2', 3128), 3)")
        ),
        format!(
            "try udp-reply {}",
            py(&format!(
                "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.sendto(b'leak', ('127.0.0.2', {udp_port})); s.recv(10)"
            ))
        ),
        "try dns getent hosts example.com".to_string(),
        format!(
            "try dns-python {}",
            py("import socket; socket.getaddrinfo('example.com', 443)")
        ),
        format!(
            "try raw {}",
            py("import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)")
        ),
        format!(
            "try netlink {}",
            py("import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)")
        ),
        "env | grep -i _proxy | LC_ALL=C sort > proxy-env.txt".to_string(),
        "true".to_string(),
    ]
    .join("\n");
    let plan = format!(
        "[swarm]\nname = \"egress\"\n\n[[task]]\nid = \"fetch\"\ntimeout = \"120s\"\nnetwork = [\"127.0.0.2:{two}\", \"127.0.0.2:{}\"]\nrun = '''\n{script}\n'''\n",
        tls.port
    );
    let path = repo.plan("egress.toml", &plan);
    let run = repo.run_plan(&path, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // `swarm validate` and the run's header say what the list grants.
    let said = redact(&stable_stderr(&run.stderr), &repo)
        .replace(&format!("127.0.0.2:{two}"), "127.0.0.2:[TWO]")
        .replace(&format!("127.0.0.2:{}", tls.port), "127.0.0.2:[TLS]");
    // The header says how many at once: the CPU count.
    let settings = crate::support::snapshot_settings_any_cpus();
    settings.bind(|| insta::assert_snapshot!(said, @r#"
    warning: the plan grants more than swarm's defaults:
      [TMP]/plans/egress.toml:7: task `fetch` network = ["127.0.0.2:[TWO]", "127.0.0.2:[TLS]"]: lets tasks reach the hosts it lists, through swarm's egress proxy
    swarm: run egress: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/egress
      start      fetch   
      succeeded  fetch    [1/1]
      merged     fetch

    run egress: succeeded
      task   status          time  try  changed  result
      fetch  merged         [T]s    1        6  refs/swarm/egress/fetch

      1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/egress at [HASH], [T]s
    "#));
    let report = repo.report();
    assert_eq!(task(&report, "fetch")["status"], "merged");
    let show = |file: &str| repo.show("swarm/egress", file);
    assert_eq!(show("two.txt"), "hello from two");
    assert_eq!(show("tls.txt"), "hello over tls");
    assert_eq!(show("py.txt"), "hello from two");
    assert_eq!(
        show("refused.txt"),
        format!(
            "swarm: task `fetch` may not reach 127.0.0.3:{three}: only the hosts of its network list [\"127.0.0.2:{two}\", \"127.0.0.2:{}\"] are reachable",
            tls.port
        )
    );
    let tries = show("tries.txt");
    let lines: Vec<&str> = tries.lines().collect();
    assert_eq!(lines.len(), 12, "{tries}");
    for line in &lines {
        assert!(line.starts_with("denied "), "{tries}");
    }
    assert_eq!(
        show("proxy-env.txt"),
        "ALL_PROXY=http://127.0.0.1:3128\nHTTPS_PROXY=http://127.0.0.1:3128\nHTTP_PROXY=http://127.0.0.1:3128\nNO_PROXY=\nall_proxy=http://127.0.0.1:3128\nhttp_proxy=http://127.0.0.1:3128\nhttps_proxy=http://127.0.0.1:3128\nno_proxy="
    );
    // The servers saw what the proxy let through, and nothing else.
    assert_eq!(two_hits.load(Ordering::SeqCst), 2, "curl and python");
    assert_eq!(other_two_hits.load(Ordering::SeqCst), 0);
    assert_eq!(three_hits.load(Ordering::SeqCst), 0);
    let mut buf = [0u8; 16];
    assert!(
        udp.recv_from(&mut buf).is_err(),
        "a datagram reached the host"
    );
    // `swarm logs` shows the proxy's word on each request.
    let logs = repo.swarm(&["logs", "egress", "fetch"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let (_, network) = logs
        .stdout
        .split_once("--- network (swarm's egress proxy)\n")
        .unwrap_or_else(|| panic!("{}", logs.stdout));
    let list = format!("[\"127.0.0.2:{two}\", \"127.0.0.2:{}\"]", tls.port);
    assert_eq!(
        network.lines().collect::<Vec<_>>(),
        [
            format!("allowed GET 127.0.0.2:{two}"),
            format!("allowed CONNECT 127.0.0.2:{}", tls.port),
            format!("allowed GET 127.0.0.2:{two}"),
            format!("refused GET 127.0.0.3:{three}: not in the network list {list}"),
            format!("refused GET 127.0.0.3:{three}: not in the network list {list}"),
            format!("refused GET 127.0.0.2:{other_two}: not in the network list {list}"),
            format!("refused CONNECT 127.0.0.3:{three}: not in the network list {list}"),
        ],
        "{}",
        logs.stdout
    );
}

/// Unconfined (`sandbox = "none"`), nothing holds a task to the proxy, but
/// a plan with a list still runs: the proxy listens on the host's
/// loopback, its variables lead there, and what honours them is held to
/// the list.
#[test]
fn unconfined_a_network_list_still_runs_through_the_proxy() {
    let repo = TestRepo::new();
    let (two, _) = http_server("127.0.0.2", "hello from two\n");
    let (three, three_hits) = http_server("127.0.0.3", "secret of three\n");
    let plan = format!(
        "[swarm]\nname = \"loose\"\nsandbox = \"none\"\n\n[[task]]\nid = \"fetch\"\nnetwork = [\"127.0.0.2:{two}\"]\nrun = '''\ncurl -sS -f -m 10 http://127.0.0.2:{two}/ > two.txt\ncurl -sS -m 10 http://127.0.0.3:{three}/ > refused.txt\ncase \"$HTTP_PROXY\" in http://127.0.0.1:*) echo host-loopback > where.txt ;; esac\n'''\n"
    );
    let path = repo.plan("loose.toml", &plan);
    let run = repo.run_plan(&path, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(repo.show("swarm/loose", "two.txt"), "hello from two");
    assert!(
        repo.show("swarm/loose", "refused.txt")
            .starts_with("swarm: task `fetch` may not reach 127.0.0.3:"),
    );
    assert_eq!(repo.show("swarm/loose", "where.txt"), "host-loopback");
    assert_eq!(three_hits.load(Ordering::SeqCst), 0);
}

/// An agent CLI with a list: its model door and its egress proxy are two
/// ports of its namespace; it reaches the door directly (`NO_PROXY`) and
/// the listed host through the proxy, nothing else.
#[test]
fn an_agent_cli_reaches_its_door_and_the_listed_host_only() {
    use crate::agent::{KEY, run_with_key};
    use crate::agent_cli::{about, bash, plan};
    use crate::support::model::{MockModel, Options, Reply, text};
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let claude = crate::support::agent_cli("claude");
    let (two, two_hits) = http_server("127.0.0.2", "hello from two\n");
    let (three, three_hits) = http_server("127.0.0.3", "secret of three\n");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| {
            if !about(call, "Fetch the page") {
                return Reply::text("ok");
            }
            match call.turn {
                0 => Reply::answer(vec![
                    text("Fetching."),
                    bash(
                        "b1",
                        &format!(
                            "curl -sS -f -m 10 http://127.0.0.2:{two}/ > page.txt; \
                             curl -sS -m 10 http://127.0.0.3:{three}/ > refused.txt; \
                             (exec 3<>/dev/tcp/127.0.0.2/{two}) 2>/dev/null && echo direct-open > direct.txt || echo direct-closed > direct.txt"
                        ),
                    ),
                ]),
                _ => Reply::text("Done."),
            }
        },
    );
    let plan_path = repo.path().join("plan.toml");
    repo.write(
        "plan.toml",
        &plan(
            &mock,
            &claude,
            &format!(
                "[[task]]\nid = \"fetch\"\nagent = \"claude\"\nprompt = \"Fetch the page.\"\nnetwork = [\"127.0.0.2:{two}\"]\nverify = \"test -s page.txt\"\n"
            ),
        ),
    );
    let run = run_with_key(&repo, &plan_path);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(repo.show("swarm/plan", "page.txt"), "hello from two");
    assert!(repo.show("swarm/plan", "refused.txt").starts_with(&format!(
        "swarm: task `fetch` may not reach 127.0.0.3:{three}"
    )),);
    assert_eq!(repo.show("swarm/plan", "direct.txt"), "direct-closed");
    assert_eq!(two_hits.load(Ordering::SeqCst), 1);
    assert_eq!(three_hits.load(Ordering::SeqCst), 0);
    let log = std::fs::read_to_string(repo.path().join(".swarm/runs/plan/logs/fetch/1.egress.log"))
        .unwrap();
    assert_eq!(
        log,
        format!(
            "allowed GET 127.0.0.2:{two}\nrefused GET 127.0.0.3:{three}: not in the network list [\"127.0.0.2:{two}\"]\n"
        )
    );
}

/// swarm's own agent with a list: it is told what it may reach, and its
/// bash commands reach that through the proxy.
#[test]
fn swarms_agent_is_told_its_hosts_and_its_commands_reach_them() {
    use crate::agent::{KEY, anthropic_plan, run_with_key};
    use crate::support::model::{MockModel, Options, Reply, tool};
    use serde_json::json;
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let (two, two_hits) = http_server("127.0.0.2", "hello from two\n");
    let (three, three_hits) = http_server("127.0.0.3", "secret of three\n");
    let mock = MockModel::start(
        Options {
            api_key: Some(KEY.into()),
            ..Options::new("claude-sonnet-4-5")
        },
        move |call| match call.turn {
            0 => {
                assert!(
                    call.system.contains(&format!(
                        "Your only network access is HTTP and HTTPS to these hosts, through the proxy your environment names (HTTP_PROXY, HTTPS_PROXY): [\"127.0.0.2:{two}\"]."
                    )),
                    "{}",
                    call.system
                );
                Reply::answer(vec![tool(
                    "t1",
                    "bash",
                    json!({"command": format!(
                        "curl -sS -f -m 10 http://127.0.0.2:{two}/; curl -sS -f -m 10 http://127.0.0.3:{three}/ || echo refused"
                    )}),
                )])
            }
            _ => {
                let result = &call.tool_results[0].content;
                assert!(result.contains("hello from two"), "{result}");
                assert!(result.contains("refused"), "{result}");
                assert!(!result.contains("secret"), "{result}");
                Reply::answer(vec![tool("f", "finish", json!({"summary": "fetched"}))])
            }
        },
    );
    let plan = repo.plan(
        "agent.toml",
        &anthropic_plan(
            &mock,
            "",
            &format!(
                "[[task]]\nid = \"fetch\"\nprompt = \"Fetch it.\"\nnetwork = [\"127.0.0.2:{two}\"]\n"
            ),
        ),
    );
    let run = run_with_key(&repo, &plan);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    mock.assert_clean();
    assert_eq!(mock.calls().len(), 2, "the second turn's asserts ran");
    assert_eq!(two_hits.load(Ordering::SeqCst), 1);
    assert_eq!(three_hits.load(Ordering::SeqCst), 0);
}

/// `[setup]` with a list: setup reaches those hosts through its own proxy
/// (its log apart, under `swarm logs --setup`), and the task keeps its own
/// network, none here.
#[test]
fn setup_reaches_its_list_and_the_task_keeps_its_own_network() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let (two, two_hits) = http_server("127.0.0.2", "hello from two\n");
    let (three, three_hits) = http_server("127.0.0.3", "secret of three\n");
    let plan = format!(
        "[swarm]\nname = \"prepared\"\n\n[setup]\nnetwork = [\"127.0.0.2:{two}\"]\nrun = '''\n\
         curl -sS -f -m 10 http://127.0.0.2:{two}/ > deps.txt\n\
         curl -sS -m 10 http://127.0.0.3:{three}/\n'''\n\n\
         [[task]]\nid = \"a\"\nrun = '''\n\
         cp deps.txt got.txt\n\
         if curl -sS -f -m 5 http://127.0.0.2:{two}/ >/dev/null 2>&1; then echo reached; else echo none; fi > task.txt\n'''\n"
    );
    let path = repo.plan("prepared.toml", &plan);
    let run = repo.run_plan(&path, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(repo.show("swarm/prepared", "got.txt"), "hello from two");
    assert_eq!(repo.show("swarm/prepared", "task.txt"), "none");
    assert_eq!(two_hits.load(Ordering::SeqCst), 1, "setup's fetch only");
    assert_eq!(three_hits.load(Ordering::SeqCst), 0);
    let logs = repo.swarm(&["logs", "prepared", "a", "--setup"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(
        logs.stdout.starts_with(&format!(
            "swarm: the [setup] of task `a` may not reach 127.0.0.3:{three}: only the hosts of its network list [\"127.0.0.2:{two}\"] are reachable\n"
        )),
        "{}",
        logs.stdout
    );
    assert!(
        logs.stdout.ends_with(&format!(
            "--- network (swarm's egress proxy)\nallowed GET 127.0.0.2:{two}\nrefused GET 127.0.0.3:{three}: not in the network list [\"127.0.0.2:{two}\"]\n"
        )),
        "{}",
        logs.stdout
    );
    // The task's own log has no proxy: it had no network list.
    assert!(
        !repo
            .path()
            .join(".swarm/runs/prepared/logs/a/1.egress.log")
            .exists()
    );
}
