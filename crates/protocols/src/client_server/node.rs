//! The node type of every client-server simulation: one enum over clients, servers and proxies,
//! all speaking [`CsMsg`].

use super::cache::CacheServer;
use super::client::CsClient;
use super::front::FrontServer;
use super::kv::KvServer;
use super::lb::LoadBalancer;
use super::msg::CsMsg;
use super::resilience::{Dependency, Gateway};
use detsim_core::{Ctx, Node, NodeId, TimerId};

/// Any node of the client-server family.
#[derive(Clone, Debug)]
pub enum CsNode {
    Client(CsClient),
    Kv(KvServer),
    Front(FrontServer),
    Cache(CacheServer),
    Lb(LoadBalancer),
    Gateway(Gateway),
    Dependency(Dependency),
}

macro_rules! each {
    ($self:ident, $node:ident => $body:expr) => {
        match $self {
            CsNode::Client($node) => $body,
            CsNode::Kv($node) => $body,
            CsNode::Front($node) => $body,
            CsNode::Cache($node) => $body,
            CsNode::Lb($node) => $body,
            CsNode::Gateway($node) => $body,
            CsNode::Dependency($node) => $body,
        }
    };
}

impl Node for CsNode {
    type Msg = CsMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, CsMsg>) {
        each!(self, node => node.on_start(ctx))
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        each!(self, node => node.on_message(ctx, from, msg))
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, timer: TimerId, tag: u64) {
        each!(self, node => node.on_timer(ctx, timer, tag))
    }
}

impl CsNode {
    pub fn as_client(&self) -> Option<&CsClient> {
        match self {
            CsNode::Client(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_kv(&self) -> Option<&KvServer> {
        match self {
            CsNode::Kv(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_cache(&self) -> Option<&CacheServer> {
        match self {
            CsNode::Cache(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_lb(&self) -> Option<&LoadBalancer> {
        match self {
            CsNode::Lb(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_gateway(&self) -> Option<&Gateway> {
        match self {
            CsNode::Gateway(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_dependency(&self) -> Option<&Dependency> {
        match self {
            CsNode::Dependency(s) => Some(s),
            _ => None,
        }
    }
}
