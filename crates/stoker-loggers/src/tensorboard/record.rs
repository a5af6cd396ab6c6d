//! TFRecord framing, as TensorBoard reads event files: each record is its length (u64, little
//! endian), the masked CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data.

/// The CRC-32C (Castagnoli) lookup table.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// TFRecord's masked CRC: rotated right by 15 bits, plus a constant.
pub fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// `data` framed as one record.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let length = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&length);
    out.extend_from_slice(&masked_crc(&length).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// The records of a file's bytes, checking both checksums of each.
pub fn records(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 12 {
            return Err("a record header is cut short".into());
        }
        let length = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        let header_crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if header_crc != masked_crc(&bytes[..8]) {
            return Err(format!(
                "record {}: the length's checksum differs",
                out.len()
            ));
        }
        if bytes.len() < 16 + length {
            return Err(format!("record {} is cut short", out.len()));
        }
        let data = &bytes[12..12 + length];
        let data_crc = u32::from_le_bytes(bytes[12 + length..16 + length].try_into().expect("4"));
        if data_crc != masked_crc(data) {
            return Err(format!("record {}: the data's checksum differs", out.len()));
        }
        out.push(data.to_vec());
        bytes = &bytes[16 + length..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_values() {
        // The check value of CRC-32C (RFC 3720, and every CRC catalogue).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn frames_read_back_and_corruption_is_caught() {
        let mut file = frame(b"hello");
        file.extend(frame(b""));
        assert_eq!(records(&file).unwrap(), vec![b"hello".to_vec(), Vec::new()]);
        file[14] ^= 1;
        assert!(records(&file).unwrap_err().contains("checksum"));
    }
}
