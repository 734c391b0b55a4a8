//! Just enough of the Kubernetes protobuf encoding to read what typed client-go callers
//! send: `kubectl create secret|configmap|namespace` and helm's release Secrets.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` {1: typeMeta {1: apiVersion,
//! 2: kind}, 2: raw}; `raw` is the object's message. Secret, ConfigMap and Namespace are
//! decoded to the same JSON the API would have received; anything else is refused.

use base64::Engine;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtobufError {
    #[error("the body is not a Kubernetes protobuf envelope")]
    NotAnEnvelope,
    #[error("truncated or malformed protobuf")]
    Malformed,
    #[error("kube-sim decodes protobuf only for Secret, ConfigMap and Namespace (got {0}); send JSON")]
    UnsupportedKind(String),
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// One field of a message: its number and its raw value.
enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
}

/// Iterates over the fields of one message.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.data.split_first().ok_or(ProtobufError::Malformed)?;
            self.data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed)
    }

    fn next_field(&mut self) -> Result<Option<Field<'a>>> {
        if self.data.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        match key & 7 {
            0 => Ok(Some(Field::Varint(number, self.varint()?))),
            2 => {
                let len = self.varint()? as usize;
                if len > self.data.len() {
                    return Err(ProtobufError::Malformed);
                }
                let (bytes, rest) = self.data.split_at(len);
                self.data = rest;
                Ok(Some(Field::Bytes(number, bytes)))
            }
            1 => self.skip(8).map(|_| Some(Field::Varint(number, 0))),
            5 => self.skip(4).map(|_| Some(Field::Varint(number, 0))),
            _ => Err(ProtobufError::Malformed),
        }
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.data.len() {
            return Err(ProtobufError::Malformed);
        }
        self.data = &self.data[n..];
        Ok(())
    }
}

fn fields(data: &[u8]) -> Result<Vec<Field<'_>>> {
    let mut reader = Reader { data };
    let mut out = Vec::new();
    while let Some(field) = reader.next_field()? {
        out.push(field);
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// A `map<string, string|bytes>` entry: {1: key, 2: value}.
fn map_entry(bytes: &[u8]) -> Result<(String, &[u8])> {
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for field in fields(bytes)? {
        match field {
            Field::Bytes(1, k) => key = String::from_utf8_lossy(k).into_owned(),
            Field::Bytes(2, v) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn insert_entry(map: &mut Value, bytes: &[u8], binary: bool) -> Result<()> {
    let (key, value) = map_entry(bytes)?;
    if !map.is_object() {
        *map = json!({});
    }
    map[key] = if binary {
        json!(base64::engine::general_purpose::STANDARD.encode(value))
    } else {
        text(value)
    };
    Ok(())
}

fn object_meta(bytes: &[u8]) -> Result<Value> {
    let mut meta = json!({});
    for field in fields(bytes)? {
        match field {
            Field::Bytes(1, v) => meta["name"] = text(v),
            Field::Bytes(2, v) => meta["generateName"] = text(v),
            Field::Bytes(3, v) => meta["namespace"] = text(v),
            Field::Bytes(5, v) => meta["uid"] = text(v),
            Field::Bytes(6, v) => meta["resourceVersion"] = text(v),
            Field::Bytes(11, v) => insert_entry(&mut meta["labels"], v, false)?,
            Field::Bytes(12, v) => insert_entry(&mut meta["annotations"], v, false)?,
            Field::Bytes(13, v) => {
                let reference = owner_reference(v)?;
                match meta["ownerReferences"].as_array_mut() {
                    Some(list) => list.push(reference),
                    None => meta["ownerReferences"] = json!([reference]),
                }
            }
            Field::Bytes(14, v) => match meta["finalizers"].as_array_mut() {
                Some(list) => list.push(text(v)),
                None => meta["finalizers"] = json!([text(v)]),
            },
            _ => {}
        }
    }
    Ok(meta)
}

fn owner_reference(bytes: &[u8]) -> Result<Value> {
    let mut reference = Map::new();
    for field in fields(bytes)? {
        let (key, value) = match field {
            Field::Bytes(1, v) => ("kind", text(v)),
            Field::Bytes(3, v) => ("name", text(v)),
            Field::Bytes(4, v) => ("uid", text(v)),
            Field::Bytes(5, v) => ("apiVersion", text(v)),
            Field::Varint(6, v) => ("controller", json!(v != 0)),
            Field::Varint(7, v) => ("blockOwnerDeletion", json!(v != 0)),
            _ => continue,
        };
        reference.insert(key.to_string(), value);
    }
    Ok(Value::Object(reference))
}

/// Decodes a protobuf request body into the object's JSON.
pub fn decode(body: &[u8]) -> Result<Value> {
    let raw_envelope = body.strip_prefix(b"k8s\0").ok_or(ProtobufError::NotAnEnvelope)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for field in fields(raw_envelope)? {
        match field {
            Field::Bytes(1, type_meta) => {
                for f in fields(type_meta)? {
                    match f {
                        Field::Bytes(1, v) => api_version = String::from_utf8_lossy(v).into_owned(),
                        Field::Bytes(2, v) => kind = String::from_utf8_lossy(v).into_owned(),
                        _ => {}
                    }
                }
            }
            Field::Bytes(2, v) => raw = v,
            _ => {}
        }
    }
    let mut object = json!({"apiVersion": api_version, "kind": kind});
    for field in fields(raw)? {
        match (kind.as_str(), field) {
            (_, Field::Bytes(1, v)) => object["metadata"] = object_meta(v)?,
            ("Secret", Field::Bytes(2, v)) => insert_entry(&mut object["data"], v, true)?,
            ("Secret", Field::Bytes(3, v)) => object["type"] = text(v),
            ("Secret", Field::Bytes(4, v)) => insert_entry(&mut object["stringData"], v, false)?,
            ("Secret", Field::Varint(5, v)) | ("ConfigMap", Field::Varint(4, v)) => object["immutable"] = json!(v != 0),
            ("ConfigMap", Field::Bytes(2, v)) => insert_entry(&mut object["data"], v, false)?,
            ("ConfigMap", Field::Bytes(3, v)) => insert_entry(&mut object["binaryData"], v, true)?,
            ("Namespace", Field::Bytes(2, _)) | ("Namespace", Field::Bytes(3, _)) => {}
            ("Secret" | "ConfigMap" | "Namespace", _) => {}
            (other, _) => return Err(ProtobufError::UnsupportedKind(other.to_string())),
        }
    }
    if !matches!(kind.as_str(), "Secret" | "ConfigMap" | "Namespace") {
        return Err(ProtobufError::UnsupportedKind(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn bytes_field(number: u32, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(u64::from(number) << 3 | 2, &mut out);
        varint(value.len() as u64, &mut out);
        out.extend_from_slice(value);
        out
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        [bytes_field(1, key.as_bytes()), bytes_field(2, value)].concat()
    }

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), bytes_field(1, &type_meta), bytes_field(2, &raw)].concat()
    }

    #[test]
    fn decodes_a_helm_style_secret() {
        let meta = [
            bytes_field(1, b"sh.helm.release.v1.r1.v1"),
            bytes_field(11, &entry("owner", b"helm")),
        ]
        .concat();
        let raw = [
            bytes_field(1, &meta),
            bytes_field(2, &entry("release", b"\x00\x01binary")),
            bytes_field(3, b"helm.sh/release.v1"),
        ]
        .concat();
        let secret = decode(&envelope("Secret", raw)).unwrap();
        assert_eq!(secret["kind"], "Secret");
        assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.r1.v1");
        assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
        assert_eq!(secret["type"], "helm.sh/release.v1");
        assert_eq!(
            secret["data"]["release"],
            base64::engine::general_purpose::STANDARD.encode(b"\x00\x01binary")
        );
    }

    #[test]
    fn decodes_config_maps_and_refuses_other_kinds() {
        let raw = [
            bytes_field(1, &bytes_field(1, b"cm")),
            bytes_field(2, &entry("k", b"v")),
        ]
        .concat();
        let cm = decode(&envelope("ConfigMap", raw)).unwrap();
        assert_eq!(cm["data"]["k"], "v");
        let pod = decode(&envelope("Pod", bytes_field(1, &bytes_field(1, b"p"))));
        assert_eq!(pod.unwrap_err(), ProtobufError::UnsupportedKind("Pod".into()));
        assert_eq!(decode(b"{}").unwrap_err(), ProtobufError::NotAnEnvelope);
        assert_eq!(decode(b"k8s\0\x0a\xff").unwrap_err(), ProtobufError::Malformed);
    }
}
