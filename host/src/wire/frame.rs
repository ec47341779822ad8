//! Framing: one request per newline-terminated line, capped at [`MAX_LINE`].

use super::*;

/// One line read from a stream by [`read_line`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its newline (a last line without one counts too).
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE`] with its newline; it was read up to its newline and
    /// discarded.
    TooLong,
    /// The stream ended.
    Eof,
}

/// Read one newline-terminated line, never buffering more than [`MAX_LINE`] bytes of it.
pub async fn read_line<R>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Complete(std::mem::take(buf)),
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            // The limit counts the newline, as firma's does.
            let newline = usize::from(done.is_some());
            if buf.len() + part.len() + newline > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            if too_long {
                return Ok(Line::TooLong);
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Line::Complete(std::mem::take(buf)));
        }
    }
}

#[cfg(test)]
mod read_line_tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_capped() {
        let mut input = Vec::new();
        input.extend_from_slice(b"first\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\nlast");
        let mut reader = tokio::io::BufReader::new(&input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete(b"first".to_vec())
        );
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::TooLong
        );
        assert_eq!(
            read_line(&mut reader, &mut buf).await.unwrap(),
            Line::Complete(b"last".to_vec())
        );
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn the_limit_counts_the_newline() {
        let mut buf = Vec::new();
        // (content length, newline?, fits); a tiny buffer splits every line across chunks.
        for (len, newline, fits) in [
            (MAX_LINE - 1, true, true),
            (MAX_LINE, true, false),
            (MAX_LINE, false, true),
            (MAX_LINE + 1, false, false),
        ] {
            for capacity in [7, 8192] {
                let mut input = vec![b'x'; len];
                if newline {
                    input.push(b'\n');
                }
                let mut reader = tokio::io::BufReader::with_capacity(capacity, &input[..]);
                let got = read_line(&mut reader, &mut buf).await.unwrap();
                let want = if fits {
                    Line::Complete(vec![b'x'; len])
                } else {
                    Line::TooLong
                };
                assert_eq!(
                    got, want,
                    "{len} bytes, newline {newline}, capacity {capacity}"
                );
            }
        }
    }
}
