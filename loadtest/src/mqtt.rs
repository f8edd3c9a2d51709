//! A minimal MQTT 3.1.1 client for load generation: CONNECT, QoS 0
//! PUBLISH, SUBSCRIBE, PINGREQ and DISCONNECT encoding, and a decoder for the
//! few packets a client receives (CONNACK, SUBACK, PUBLISH, PINGRESP).
//!
//! Why not `rumqttc` (which the integration tests use): a load generator
//! must hold 10,000+ connections and push 100,000+ pings/s from the same
//! two cores the server runs on. rumqttc gives every connection its own
//! `EventLoop` task with its own buffers, request channel and timers, so
//! the generator would spend the CPU the server needs. Here a connection is
//! a `TcpStream` plus a pre-encoded topic, and one sender task drives
//! thousands of them with non-blocking writes (see `fleet`). Only QoS 0 is
//! needed (driver pings are fire-and-forget).

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Fixed-header first bytes (packet type << 4 | flags).
const CONNECT: u8 = 0x10;
const CONNACK: u8 = 0x20;
const PUBLISH_QOS0: u8 = 0x30;
const SUBSCRIBE: u8 = 0x82;
const SUBACK: u8 = 0x90;
pub const PINGREQ: [u8; 2] = [0xC0, 0x00];
const PINGRESP: u8 = 0xD0;
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// Largest remaining length MQTT can express (4 length bytes).
const MAX_REMAINING: usize = 268_435_455;

/// How long the broker has to answer CONNECT or SUBSCRIBE.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Appends the variable-length "remaining length" of a fixed header.
fn put_remaining_length(out: &mut Vec<u8>, mut len: usize) {
    debug_assert!(len <= MAX_REMAINING);
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    // Topics, client ids and credentials here are far below 64 KiB.
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// CONNECT with a clean session; `credentials` is `(username, password)`.
pub fn encode_connect(
    client_id: &str,
    credentials: Option<(&str, &str)>,
    keep_alive_s: u16,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    put_str(&mut body, b"MQTT");
    body.push(4); // protocol level 3.1.1
    let mut flags = 0x02; // clean session
    if credentials.is_some() {
        flags |= 0x80 | 0x40;
    }
    body.push(flags);
    body.extend_from_slice(&keep_alive_s.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    if let Some((user, pass)) = credentials {
        put_str(&mut body, user.as_bytes());
        put_str(&mut body, pass.as_bytes());
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(CONNECT);
    put_remaining_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Appends a QoS 0 PUBLISH of `payload` to `topic`.
pub fn encode_publish(out: &mut Vec<u8>, topic: &[u8], payload: &[u8]) {
    out.push(PUBLISH_QOS0);
    put_remaining_length(out, 2 + topic.len() + payload.len());
    put_str(out, topic);
    out.extend_from_slice(payload);
}

/// SUBSCRIBE to one filter at QoS 0.
pub fn encode_subscribe(packet_id: u16, filter: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(filter.len() + 9);
    out.push(SUBSCRIBE);
    put_remaining_length(&mut out, 2 + 2 + filter.len() + 1);
    out.extend_from_slice(&packet_id.to_be_bytes());
    put_str(&mut out, filter.as_bytes());
    out.push(0);
    out
}

/// A decoded incoming packet; PUBLISH borrows from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    ConnAck {
        return_code: u8,
    },
    SubAck,
    PingResp,
    Publish {
        topic: &'a [u8],
        payload: &'a [u8],
    },
    /// Anything else a client may receive (PUBACK for QoS 1, …), by type.
    Other(u8),
}

/// Decodes the first complete packet in `buf`: `Ok(Some((packet, used)))`,
/// `Ok(None)` when more bytes are needed, `Err` on a malformed stream.
pub fn decode(buf: &[u8]) -> anyhow::Result<Option<(Packet<'_>, usize)>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = 1;
    loop {
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        len |= usize::from(b & 0x7F) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            bail!("malformed MQTT remaining length");
        }
    }
    let end = i + len;
    if buf.len() < end {
        return Ok(None);
    }
    let body = &buf[i..end];
    let packet = match first & 0xF0 {
        CONNACK => match body {
            [_, rc] => Packet::ConnAck { return_code: *rc },
            _ => bail!("malformed CONNACK"),
        },
        SUBACK => Packet::SubAck,
        PINGRESP => Packet::PingResp,
        PUBLISH_QOS0 => {
            let qos = (first >> 1) & 0x03;
            let [hi, lo, rest @ ..] = body else {
                bail!("malformed PUBLISH");
            };
            let topic_len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if rest.len() < topic_len {
                bail!("malformed PUBLISH topic");
            }
            let (topic, mut payload) = rest.split_at(topic_len);
            if qos > 0 {
                // Skip the packet id.
                payload = payload.get(2..).unwrap_or_default();
            }
            Packet::Publish { topic, payload }
        }
        other => Packet::Other(other >> 4),
    };
    Ok(Some((packet, end)))
}

/// Opens a TCP connection and completes the MQTT handshake.
pub async fn connect(
    addr: &str,
    client_id: &str,
    credentials: Option<(&str, &str)>,
    keep_alive_s: u16,
) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to MQTT broker {addr}"))?;
    // One ping per packet is the point of the ingest scenario: no Nagle.
    stream.set_nodelay(true)?;
    stream
        .write_all(&encode_connect(client_id, credentials, keep_alive_s))
        .await?;
    match read_packet_kind(&mut stream).await? {
        Ack::Connect(0) => Ok(stream),
        Ack::Connect(rc) => bail!("broker refused CONNECT (return code {rc})"),
        other => bail!("expected CONNACK, got {other:?}"),
    }
}

/// Subscribes an open connection to `filter` and waits for the SUBACK.
pub async fn subscribe(stream: &mut TcpStream, filter: &str) -> anyhow::Result<()> {
    stream.write_all(&encode_subscribe(1, filter)).await?;
    match read_packet_kind(stream).await? {
        Ack::Subscribe => Ok(()),
        other => bail!("expected SUBACK, got {other:?}"),
    }
}

#[derive(Debug)]
enum Ack {
    Connect(u8),
    Subscribe,
    Other,
}

/// Reads exactly one small packet during a handshake.
async fn read_packet_kind(stream: &mut TcpStream) -> anyhow::Result<Ack> {
    let mut buf = Vec::with_capacity(16);
    let read = async {
        loop {
            if let Some((packet, _)) = decode(&buf)? {
                return Ok(match packet {
                    Packet::ConnAck { return_code } => Ack::Connect(return_code),
                    Packet::SubAck => Ack::Subscribe,
                    _ => Ack::Other,
                });
            }
            let mut chunk = [0u8; 64];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("broker closed the connection during the handshake");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, read)
        .await
        .context("MQTT handshake timed out")?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_length(len: usize, expected: &[u8]) {
        let mut out = Vec::new();
        put_remaining_length(&mut out, len);
        assert_eq!(out, expected, "length {len}");
    }

    #[test]
    fn remaining_length_boundaries() {
        check_length(0, &[0x00]);
        check_length(127, &[0x7F]);
        check_length(128, &[0x80, 0x01]);
        check_length(16_383, &[0xFF, 0x7F]);
        check_length(16_384, &[0x80, 0x80, 0x01]);
        check_length(2_097_152, &[0x80, 0x80, 0x80, 0x01]);
        check_length(MAX_REMAINING, &[0xFF, 0xFF, 0xFF, 0x7F]);
    }

    #[test]
    fn connect_bytes() {
        let p = encode_connect("c1", Some(("u", "p")), 60);
        assert_eq!(
            p,
            [
                0x10, 20, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60, 0, 2, b'c', b'1', 0, 1,
                b'u', 0, 1, b'p'
            ]
        );
        let anon = encode_connect("c", None, 30);
        assert_eq!(anon[9], 0x02);
        assert_eq!(usize::from(anon[1]), anon.len() - 2);
    }

    #[test]
    fn publish_round_trip_and_partial_reads() {
        let mut buf = Vec::new();
        encode_publish(&mut buf, b"drivers/x/location", b"{\"lat\":1}");
        let payload = vec![b'x'; 300];
        encode_publish(&mut buf, b"t", &payload);
        let (p, used) = decode(&buf).expect("ok").expect("complete");
        assert_eq!(
            p,
            Packet::Publish {
                topic: b"drivers/x/location",
                payload: b"{\"lat\":1}"
            }
        );
        for cut in 0..buf.len() - used {
            let part = &buf[used..used + cut];
            assert_eq!(decode(part).expect("ok"), None, "cut {cut}");
        }
        let (p, used2) = decode(&buf[used..]).expect("ok").expect("complete");
        assert_eq!(used + used2, buf.len());
        assert_eq!(
            p,
            Packet::Publish {
                topic: b"t",
                payload: &payload
            }
        );
    }

    #[test]
    fn decodes_acks() {
        assert_eq!(
            decode(&[0x20, 2, 0, 5]).expect("ok"),
            Some((Packet::ConnAck { return_code: 5 }, 4))
        );
        assert_eq!(
            decode(&[0x90, 3, 0, 1, 0]).expect("ok"),
            Some((Packet::SubAck, 5))
        );
        assert_eq!(decode(&[0xD0, 0]).expect("ok"), Some((Packet::PingResp, 2)));
        assert!(decode(&[0x20, 3, 0, 0, 0]).is_err());
        assert!(decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err());
    }

    #[test]
    fn subscribe_bytes() {
        assert_eq!(
            encode_subscribe(1, "a/+"),
            [0x82, 8, 0, 1, 0, 3, b'a', b'/', b'+', 0]
        );
    }
}
