//! The relay's frame handling, frame by frame.

use super::*;
use crate::amqp::terminate::wire::cut;

fn frames(bytes: &BytesMut) -> Vec<RawFrame> {
    let mut buf = bytes.clone();
    let mut out = Vec::new();
    while let Ok(Some(f)) = cut(&mut buf, 0) {
        out.push(f);
    }
    out
}

fn one(channel: u16, method: &AMQPClass) -> RawFrame {
    frames(&{
        let mut b = BytesMut::new();
        put_method(&mut b, channel, method);
        b
    })
    .remove(0)
}

fn content(kind: u8, channel: u16, payload: &[u8]) -> RawFrame {
    let mut b = BytesMut::new();
    wire::put_frame(&mut b, kind, channel, payload);
    frames(&b).remove(0)
}

fn header(channel: u16, size: u64) -> RawFrame {
    let mut p = vec![0, 60, 0, 0];
    p.extend_from_slice(&size.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    content(FRAME_HEADER, channel, &p)
}

fn open_channel(r: &mut Relay, n: u16) {
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let open = AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}));
    r.client_frame(one(n, &open), &mut c, &mut s).unwrap();
    let ok = AMQPClass::Channel(channel::AMQPMethod::OpenOk(channel::OpenOk {}));
    r.node_frame(one(n, &ok), &mut c, &mut s).unwrap();
    assert_eq!(r.channels[&n].phase, Phase::Open);
}

fn deliver(tag: u64) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
        consumer_tag: "c".into(),
        delivery_tag: tag,
        redelivered: false,
        exchange: "".into(),
        routing_key: "q".into(),
    }))
}

#[test]
fn a_delivery_reaches_the_client_whole_with_its_tag_on_the_client_sequence() {
    let mut r = Relay::new(1, 2047);
    open_channel(&mut r, 1);
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
    r.node_frame(header(1, 4), &mut c, &mut s).unwrap();
    r.node_frame(content(FRAME_BODY, 1, b"ab"), &mut c, &mut s)
        .unwrap();
    assert!(c.is_empty(), "half a message was passed on");
    r.node_frame(content(FRAME_BODY, 1, b"cd"), &mut c, &mut s)
        .unwrap();
    assert_eq!(frames(&c).len(), 4);
    // A new node: its tag 1 is the client's tag 2; an ack of tag 1 (old node) is dropped.
    r.channels.get_mut(&1).unwrap().new_epoch();
    c.clear();
    r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
    r.node_frame(header(1, 0), &mut c, &mut s).unwrap();
    let f = frames(&c).remove(0);
    let at = wire::deliver_tag_offset(&f.bytes).unwrap();
    assert_eq!(wire::u64_at(&f.bytes, at), Some(2));
    let ack = |t| {
        AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
            delivery_tag: t,
            multiple: false,
        }))
    };
    r.client_frame(one(1, &ack(1)), &mut c, &mut s).unwrap();
    assert!(
        s.is_empty(),
        "an ack of the old node's delivery was passed on"
    );
    r.client_frame(one(1, &ack(2)), &mut c, &mut s).unwrap();
    let sent = frames(&s).remove(0);
    assert_eq!(wire::ack_fields(&sent), Some((1, false)));
}

#[test]
fn a_message_lost_mid_way_is_not_half_delivered() {
    let mut r = Relay::new(1, 2047);
    open_channel(&mut r, 1);
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
    r.node_frame(header(1, 10), &mut c, &mut s).unwrap();
    r.channels.get_mut(&1).unwrap().new_epoch();
    r.node_frame(one(1, &deliver(1)), &mut c, &mut s).unwrap();
    r.node_frame(header(1, 1), &mut c, &mut s).unwrap();
    r.node_frame(content(FRAME_BODY, 1, b"x"), &mut c, &mut s)
        .unwrap();
    assert_eq!(
        frames(&c).len(),
        3,
        "only the whole message of the new node"
    );
}

#[test]
fn publishes_are_kept_until_confirmed_and_confirms_follow_the_client_sequence() {
    let mut r = Relay::new(1, 2047);
    open_channel(&mut r, 1);
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    r.client_frame(one(1, &confirm_select(false)), &mut c, &mut s)
        .unwrap();
    let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
        exchange: "".into(),
        routing_key: "q".into(),
        mandatory: false,
        immediate: false,
    }));
    for _ in 0..2 {
        r.client_frame(one(1, &publish), &mut c, &mut s).unwrap();
        r.client_frame(header(1, 1), &mut c, &mut s).unwrap();
        r.client_frame(content(FRAME_BODY, 1, b"m"), &mut c, &mut s)
            .unwrap();
    }
    assert_eq!(r.channels[&1].publishes.unconfirmed(), 2);
    let node_ack = AMQPClass::Basic(basic::AMQPMethod::Ack(basic::Ack {
        delivery_tag: 1,
        multiple: false,
    }));
    r.node_frame(one(1, &node_ack), &mut c, &mut s).unwrap();
    assert_eq!(r.channels[&1].publishes.unconfirmed(), 1);
    let told = frames(&c).pop().unwrap();
    assert_eq!(told.method(), Some(id::BASIC_ACK));
    assert_eq!(wire::ack_fields(&told), Some((1, false)));
}

#[test]
fn server_named_queues_get_a_name_from_warren_and_are_recorded_on_declare_ok() {
    let mut r = Relay::new(7, 2047);
    open_channel(&mut r, 1);
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: "".into(),
        passive: false,
        durable: false,
        exclusive: true,
        auto_delete: true,
        nowait: false,
        arguments: Default::default(),
    }));
    r.client_frame(one(1, &declare), &mut c, &mut s).unwrap();
    let sent = frames(&s).remove(0);
    let name = match parse_class(sent.payload()) {
        Ok((_, AMQPClass::Queue(queue::AMQPMethod::Declare(d)))) => d.queue.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(name.starts_with("warren.gen-"), "{name}");
    assert!(
        r.topology.entries().is_empty(),
        "recorded before the node accepted it"
    );
    let ok = AMQPClass::Queue(queue::AMQPMethod::DeclareOk(queue::DeclareOk {
        queue: name.as_str().into(),
        message_count: 0,
        consumer_count: 0,
    }));
    r.node_frame(one(1, &ok), &mut c, &mut s).unwrap();
    assert_eq!(r.topology.entries().len(), 1);
    assert!(r.topology.connection_bound_queue().is_some());
}

#[test]
fn an_unknown_tag_close_from_the_node_names_the_clients_tag() {
    let mut r = Relay::new(1, 2047);
    open_channel(&mut r, 1);
    let (mut c, mut s) = (BytesMut::new(), BytesMut::new());
    for t in 1..=3 {
        r.node_frame(one(1, &deliver(t)), &mut c, &mut s).unwrap();
        r.node_frame(header(1, 0), &mut c, &mut s).unwrap();
    }
    r.channels.get_mut(&1).unwrap().new_epoch();
    c.clear();
    let close = AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 406,
        reply_text: "PRECONDITION_FAILED - unknown delivery tag 7".into(),
        class_id: 60,
        method_id: 80,
    }));
    r.node_frame(one(1, &close), &mut c, &mut s).unwrap();
    let told = frames(&c).remove(0);
    assert_eq!(
        close_fields(told.payload()),
        (
            406,
            "PRECONDITION_FAILED - unknown delivery tag 10".to_string()
        )
    );
}
