//! Just enough gRPC to route: field 1 of the first message, and
//! trailers-only error responses.

/// gRPC status codes the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    Unavailable = 14,
}

impl Code {
    /// As `grpc-status` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "3",
            Code::DeadlineExceeded => "4",
            Code::NotFound => "5",
            Code::Unavailable => "14",
        }
    }
}

/// The first message of a gRPC request body (`flag, u32 length, message`).
pub fn first_message(body: &[u8]) -> Result<&[u8], &'static str> {
    if body.len() < 5 {
        return Err("gRPC body shorter than one frame header");
    }
    if body[0] != 0 {
        return Err("compressed gRPC messages are not routed");
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    body.get(5..5 + len)
        .ok_or("gRPC frame longer than the request body")
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, &'static str> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or("truncated protobuf varint")?;
        *at += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("protobuf varint longer than 10 bytes")
}

/// Field 1 as a string (`model_name` of `ModelInferRequest`, `name` of
/// `ModelMetadataRequest` and `ModelReadyRequest`), skipping other fields.
/// Empty when absent, as protobuf's default.
pub fn field_one(msg: &[u8]) -> Result<&str, &'static str> {
    let mut at = 0;
    while at < msg.len() {
        let key = varint(msg, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(msg, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = varint(msg, &mut at)? as usize;
                let end = at.checked_add(len).ok_or("protobuf length overflows")?;
                let bytes = msg.get(at..end).ok_or("truncated protobuf field")?;
                if field == 1 {
                    return std::str::from_utf8(bytes).map_err(|_| "model name is not UTF-8");
                }
                at = end;
            }
            5 => at += 4,
            _ => return Err("unsupported protobuf wire type"),
        }
    }
    if at > msg.len() {
        return Err("truncated protobuf field");
    }
    Ok("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_field_one_after_other_fields() {
        // field 3 (string "id"), field 2 varint 7, field 1 "resnet".
        let msg = [
            0x1A, 2, b'i', b'd', 0x10, 7, 0x0A, 6, b'r', b'e', b's', b'n', b'e', b't',
        ];
        let mut body = vec![0, 0, 0, 0, msg.len() as u8];
        body.extend_from_slice(&msg);
        assert_eq!(field_one(first_message(&body).unwrap()), Ok("resnet"));
    }

    #[test]
    fn refuses_truncated_input() {
        assert!(first_message(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(field_one(&[0x0A, 5, b'a']).is_err());
        assert!(field_one(&[0x09, 1, 2]).is_err());
        assert_eq!(field_one(&[]), Ok(""));
    }
}
