//! The task graph: a petgraph DAG over a plan's tasks, with the orders the
//! scheduler and the merger need, and DOT / Mermaid renderings.
//!
//! Nodes are indices into the plan's task list, so every other module can
//! keep plain `Vec`s indexed the same way.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use swarm_protocol::TaskStatus;

pub use crate::ids::TaskIndex;
use crate::plan::Task;

/// Edges point from a dependency to its dependent.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    graph: DiGraph<usize, ()>,
    /// Tasks in merge order: topological, ties broken by plan order.
    order: Vec<TaskIndex>,
    /// Number of tasks on the longest path from each task to the end of the
    /// graph, itself included.
    critical: Vec<usize>,
    /// Each task's expected duration in milliseconds (see [`Self::weigh`]).
    expected: Vec<u64>,
    /// What a task added later (a subtask) is expected to take.
    fallback: u64,
    /// Expected milliseconds on the longest path from each task to the end
    /// of the graph, itself included: the order of the ready queue.
    priority: Vec<u64>,
}

/// What a task is expected to take when nothing says otherwise: one
/// second each makes the priority the critical path in tasks.
pub const UNWEIGHED_MS: u64 = 1000;

/// How long each task of a graph is expected to take, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// By task index.
    pub per_task: Vec<u64>,
    /// For a task not in `per_task` (a subtask spawned later).
    pub fallback: u64,
}

fn build<T: Borrow<Task>>(tasks: &[T]) -> DiGraph<usize, ()> {
    let mut graph = DiGraph::with_capacity(tasks.len(), tasks.len());
    for i in 0..tasks.len() {
        graph.add_node(i);
    }
    let index: std::collections::HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.borrow().id.as_str(), i))
        .collect();
    for (i, task) in tasks.iter().enumerate() {
        for dep in &task.borrow().deps {
            if let Some(&d) = index.get(dep.as_str()) {
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
            }
        }
    }
    graph
}

/// A dependency cycle among `tasks`, as task indices in dependency order
/// (each depends on the one before, the first on the last), if there is one.
pub fn find_cycle(tasks: &[Task]) -> Option<Vec<usize>> {
    let graph = build(tasks);
    // Smallest strongly connected component with more than one node, then a
    // path around it; the one with the earliest task makes messages stable.
    let scc = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .min_by_key(|c| c.iter().map(|n| n.index()).min())?;
    let members: std::collections::HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| n.index())?;
    // Walk forward inside the component until we come back to a seen node.
    let mut path = vec![start];
    let mut at = start;
    loop {
        let next = graph
            .neighbors_directed(at, Direction::Outgoing)
            .filter(|n| members.contains(n))
            .min_by_key(|n| n.index())?;
        if let Some(pos) = path.iter().position(|&p| p == next) {
            return Some(path[pos..].iter().map(|n| n.index()).collect());
        }
        path.push(next);
        at = next;
    }
}

impl TaskGraph {
    /// Builds the graph of a checked plan's tasks (no unknown deps, no
    /// cycles).
    pub fn new<T: Borrow<Task>>(tasks: &[T]) -> Self {
        let graph = build(tasks);
        let order = topo_order(&graph);
        let mut critical = vec![1; tasks.len()];
        for &i in order.iter().rev() {
            let longest = graph
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
                .map(|n| critical[n.index()])
                .max()
                .unwrap_or(0);
            critical[i] = longest + 1;
        }
        let mut graph = Self {
            graph,
            order: order.into_iter().map(TaskIndex::new).collect(),
            critical,
            expected: vec![UNWEIGHED_MS; tasks.len()],
            fallback: UNWEIGHED_MS,
            priority: Vec::new(),
        };
        graph.prioritise();
        graph
    }

    /// Weighs each task by how long it is expected to take, so that the
    /// ready queue starts the longest remaining chain in time, not in
    /// tasks.
    pub fn weigh(&mut self, expected: Expected) {
        self.fallback = expected.fallback;
        self.expected = expected.per_task;
        self.expected.resize(self.graph.node_count(), self.fallback);
        self.prioritise();
    }

    /// Recomputes every task's priority from the expected durations.
    fn prioritise(&mut self) {
        // Subtasks may make the merge order partial: toposort all nodes.
        let sorted = petgraph::algo::toposort(&self.graph, None).unwrap_or_default();
        self.priority = self.expected.clone();
        for node in sorted.iter().rev() {
            let longest = self
                .graph
                .neighbors_directed(*node, Direction::Outgoing)
                .map(|n| self.priority[n.index()])
                .max()
                .unwrap_or(0);
            self.priority[node.index()] = self.expected[node.index()].saturating_add(longest);
        }
    }

    /// Adds the tasks of `tasks` from index `first` on (subtasks spawned
    /// at run time; they depend only on each other). They are not in the
    /// merge order: their results reach the integration branch through
    /// their parent's.
    pub fn extend<T: std::borrow::Borrow<Task>>(&mut self, tasks: &[T], first: TaskIndex) {
        let first = first.get();
        let index: std::collections::HashMap<&str, usize> = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.borrow().id.as_str(), i))
            .collect();
        for i in self.graph.node_count()..tasks.len() {
            self.graph.add_node(i);
        }
        for (i, task) in tasks.iter().enumerate().skip(first) {
            for dep in &task.borrow().deps {
                if let Some(&d) = index.get(dep.as_str()) {
                    self.graph
                        .add_edge(NodeIndex::new(d), NodeIndex::new(i), ());
                }
            }
        }
        self.critical.resize(tasks.len(), 1);
        let sorted = petgraph::algo::toposort(&self.graph, None).unwrap_or_default();
        for node in sorted.iter().rev().filter(|n| n.index() >= first) {
            let longest = self
                .graph
                .neighbors_directed(*node, Direction::Outgoing)
                .map(|n| self.critical[n.index()])
                .max()
                .unwrap_or(0);
            self.critical[node.index()] = longest + 1;
        }
        self.expected.resize(tasks.len(), self.fallback);
        self.prioritise();
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Tasks in merge order: dependencies first, then plan order.
    pub fn merge_order(&self) -> &[TaskIndex] {
        &self.order
    }

    /// Length (in tasks) of the longest chain starting at `task` (what
    /// `swarm validate` reports; the scheduler orders by [`Self::priority`]).
    pub fn critical_path(&self, task: TaskIndex) -> usize {
        self.critical[task.get()]
    }

    /// Expected milliseconds on the longest chain starting at `task` (the
    /// critical path in tasks when the graph is not [weighed](Self::weigh),
    /// times [`UNWEIGHED_MS`]); the scheduler starts tasks with higher
    /// priority first, ties in plan order.
    pub fn priority(&self, task: TaskIndex) -> u64 {
        self.priority[task.get()]
    }

    /// Expected milliseconds of `task` itself (from the history of
    /// durations, or a fallback when the graph is not weighed).
    pub fn expected(&self, task: TaskIndex) -> u64 {
        self.expected
            .get(task.get())
            .copied()
            .unwrap_or(self.fallback)
    }

    pub fn deps(&self, task: TaskIndex) -> impl Iterator<Item = TaskIndex> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(task.get()), Direction::Incoming)
            .map(|n| TaskIndex::new(n.index()))
    }

    pub fn dependents(&self, task: TaskIndex) -> impl Iterator<Item = TaskIndex> + '_ {
        self.graph
            .neighbors_directed(NodeIndex::new(task.get()), Direction::Outgoing)
            .map(|n| TaskIndex::new(n.index()))
    }

    /// The graph in Graphviz DOT, nodes coloured by `status` where given.
    pub fn to_dot(&self, name: &str, tasks: &[Task], status: Option<&[TaskStatus]>) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
            escape(name)
        );
        for (i, task) in tasks.iter().enumerate() {
            let _ = match status.and_then(|s| s.get(i)) {
                Some(s) => writeln!(
                    out,
                    "  \"{}\" [label=\"{}\\n{s}\", style=\"rounded,filled\", fillcolor=\"{}\"];",
                    escape(&task.id),
                    escape(&task.id),
                    colour(*s)
                ),
                None => writeln!(out, "  \"{}\";", escape(&task.id)),
            };
        }
        for edge in self.graph.raw_edges() {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                escape(&tasks[edge.source().index()].id),
                escape(&tasks[edge.target().index()].id)
            );
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart, nodes styled by `status` where given.
    pub fn to_mermaid(&self, tasks: &[Task], status: Option<&[TaskStatus]>) -> String {
        // Mermaid ids cannot contain `-`; index-based ids avoid any escaping.
        let mut out = String::from("flowchart LR\n");
        for (i, task) in tasks.iter().enumerate() {
            let _ = match status.and_then(|s| s.get(i)) {
                Some(s) => writeln!(out, "  t{i}[\"{}<br/>{s}\"]", task.id),
                None => writeln!(out, "  t{i}[\"{}\"]", task.id),
            };
        }
        for edge in self.graph.raw_edges() {
            let _ = writeln!(
                out,
                "  t{} --> t{}",
                edge.source().index(),
                edge.target().index()
            );
        }
        if let Some(status) = status {
            for (i, s) in status.iter().enumerate() {
                let _ = writeln!(out, "  style t{i} fill:{}", colour(*s));
            }
        }
        out
    }
}

/// Kahn's algorithm with a min-heap so that ready tasks come out in plan
/// order: the same plan always merges in the same order.
fn topo_order(graph: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for n in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            indegree[n.index()] -= 1;
            if indegree[n.index()] == 0 {
                ready.push(Reverse(n.index()));
            }
        }
    }
    order
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn colour(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "#eeeeee",
        TaskStatus::Running => "#9ecbff",
        TaskStatus::Succeeded | TaskStatus::Merged => "#a6e3a1",
        TaskStatus::Failed
        | TaskStatus::TimedOut
        | TaskStatus::Stalled
        | TaskStatus::BrokeVerify => "#f38ba8",
        TaskStatus::Conflicted => "#fab387",
        TaskStatus::Blocked | TaskStatus::Skipped | TaskStatus::Cancelled => "#cccccc",
    }
}
