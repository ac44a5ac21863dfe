//! Cycle search on petgraph dependency graphs: strongly connected components, and the shortest
//! cycle through an edge using only edges a filter allows (breadth-first, inside one component).

use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::VecDeque;

/// Component number of every node (Tarjan); `sizes[c]` is how many nodes component `c` has.
pub(crate) struct Components {
    pub of_node: Vec<usize>,
    pub sizes: Vec<usize>,
}

impl Components {
    pub fn new<N, E>(graph: &DiGraph<N, E>) -> Self {
        Self::from_sccs(petgraph::algo::tarjan_scc(graph), graph.node_count())
    }

    /// From the strongly connected components of a graph with `node_count` nodes.
    pub fn from_sccs(sccs: Vec<Vec<NodeIndex>>, node_count: usize) -> Self {
        let mut of_node = vec![usize::MAX; node_count];
        let mut sizes = Vec::with_capacity(sccs.len());
        for (component, nodes) in sccs.iter().enumerate() {
            for node in nodes {
                of_node[node.index()] = component;
            }
            sizes.push(nodes.len());
        }
        Components { of_node, sizes }
    }

    /// True when the edge lies on some cycle (both ends in one component of two or more nodes, or a
    /// self-loop).
    pub fn on_cycle(&self, from: NodeIndex, to: NodeIndex) -> bool {
        let component = self.of_node[from.index()];
        component == self.of_node[to.index()] && (self.sizes[component] > 1 || from == to)
    }
}

/// The shortest path from `from` to `to` (as edges) through edges `allowed` accepts, staying inside
/// `from`'s component when `components` is given. `None` when there is none. `visited` is scratch
/// space kept between calls; `generation` must differ from every earlier call's.
pub(crate) fn shortest_path<N, E>(
    graph: &DiGraph<N, E>,
    components: Option<&Components>,
    from: NodeIndex,
    to: NodeIndex,
    allowed: impl Fn(&E) -> bool,
    visited: &mut Vec<u32>,
    generation: u32,
) -> Option<Vec<EdgeIndex>> {
    let component_of = |node: NodeIndex| components.map_or(0, |c| c.of_node[node.index()]);
    let component = component_of(from);
    if component_of(to) != component {
        return None;
    }
    if visited.len() < graph.node_count() {
        visited.resize(graph.node_count(), 0);
    }
    // The BFS tree: each reached node, the edge it was reached by, and its parent's position.
    let mut tree: Vec<(NodeIndex, Option<(EdgeIndex, usize)>)> = vec![(from, None)];
    visited[from.index()] = generation;
    let mut queue = VecDeque::from([0usize]);
    while let Some(position) = queue.pop_front() {
        let node = tree[position].0;
        for edge in graph.edges_directed(node, Direction::Outgoing) {
            if !allowed(edge.weight()) {
                continue;
            }
            let next = edge.target();
            if next == to {
                let mut path = vec![edge.id()];
                let mut cursor = position;
                while let Some((edge, parent)) = tree[cursor].1 {
                    path.push(edge);
                    cursor = parent;
                }
                path.reverse();
                return Some(path);
            }
            if visited[next.index()] == generation || component_of(next) != component {
                continue;
            }
            visited[next.index()] = generation;
            queue.push_back(tree.len());
            tree.push((next, Some((edge.id(), position))));
        }
    }
    None
}
