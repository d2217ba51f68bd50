//! When an X.509 certificate expires: the one field podgate reads from certificates, for the
//! `podgate_tls_certificate_expiry_timestamp_seconds` gauge. A few lines of DER walking (the
//! certificate is already accepted by rustls), rather than a full X.509 parser in the binary.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// `notAfter` of the first certificate in `pem` (a chain, leaf first), as Unix seconds.
pub fn pem_not_after(pem: &[u8]) -> Option<u64> {
    let first = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    not_after(first.as_ref())
}

/// `notAfter` of a DER certificate, as Unix seconds; `None` when it cannot be read.
pub fn not_after(der: &[u8]) -> Option<u64> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    //   serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... } ... }
    let (certificate, _) = sequence(der)?;
    let (tbs, _) = sequence(certificate)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serialNumber, signature, issuer
    }
    let (validity, _) = sequence(rest)?;
    let after_not_before = element(validity)?.2;
    let (tag, time, _) = element(after_not_before)?;
    parse_time(tag, time)
}

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn sequence(der: &[u8]) -> Option<(&[u8], &[u8])> {
    match element(der)? {
        (0x30, contents, rest) => Some((contents, rest)),
        _ => None,
    }
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC
/// 5280 requires them (UTC, seconds, no fractions).
fn parse_time(tag: u8, text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| -> Option<u64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 12) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (0x18, 14) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    let field = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = i64::try_from(year).ok()? - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::try_from(month).ok()?;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::try_from(day).ok()? - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_after: (i32, u8, u8)) -> rcgen::Certificate {
        let mut params =
            rcgen::CertificateParams::new(vec!["podgate.test".into()]).expect("params");
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().expect("a key");
        params.self_signed(&key).expect("a certificate")
    }

    #[test]
    fn reads_not_after_from_real_certificates() {
        // 2030-01-02T00:00:00Z and 2049-12-31 (UTCTime), 2051-06-01 (GeneralizedTime).
        for ((y, m, d), unix) in [
            ((2030, 1, 2), 1_893_542_400),
            ((2049, 12, 31), 2_524_521_600),
            ((2051, 6, 1), 2_569_190_400),
        ] {
            let c = cert((y, m, d));
            assert_eq!(not_after(c.der()), Some(unix), "{y}-{m}-{d}");
            assert_eq!(pem_not_after(c.pem().as_bytes()), Some(unix), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x05, 0x30]), None);
        assert_eq!(pem_not_after(b"not a pem"), None);
        let c = cert((2030, 1, 2));
        let der = c.der().to_vec();
        assert_eq!(not_after(&der[..der.len() / 2]), None, "a cut certificate");
        assert_eq!(parse_time(0x17, b"301302000000Z"), None, "month 13");
        assert_eq!(parse_time(0x17, b"300102000000"), None, "no Z");
        // Before 1970: not a time this gauge can show.
        assert_eq!(parse_time(0x17, b"500101000000Z"), None);
        assert_eq!(parse_time(0x18, b"19700101000000Z"), Some(0));
        // UTCTime years 50-99 are 19xx, 00-49 are 20xx (RFC 5280).
        assert_eq!(parse_time(0x17, b"700101000001Z"), Some(1));
        assert_eq!(parse_time(0x17, b"000101000000Z"), Some(946_684_800));
    }
}
