//! Utilities to work with raw WebSocket frames.

pub mod coding;

#[allow(clippy::module_inception)]
mod frame;
mod mask;
mod utf8;

pub use self::{
    frame::{CloseFrame, Frame, FrameHeader},
    utf8::Utf8Bytes,
};

use crate::{
    error::{CapacityError, Error, ProtocolError, Result},
    protocol::frame::mask::apply_mask,
    Message,
};
use bytes::BytesMut;
use log::*;
use std::io::{self, Cursor, Error as IoError, ErrorKind as IoErrorKind, Read, Write};

/// Read buffer size used for `FrameSocket`.
const READ_BUF_LEN: usize = 128 * 1024;

thread_local! {
    /// authbridge patch (change 9): what a codec with no room in its
    /// own buffer reads into (`FrameCodec::read_in`); as long as the longest read.
    static READ_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A reader and writer for WebSocket frames.
#[derive(Debug)]
pub struct FrameSocket<Stream> {
    /// The underlying network stream.
    stream: Stream,
    /// Codec for reading/writing frames.
    codec: FrameCodec,
}

impl<Stream> FrameSocket<Stream> {
    /// Create a new frame socket.
    pub fn new(stream: Stream) -> Self {
        FrameSocket { stream, codec: FrameCodec::new(READ_BUF_LEN) }
    }

    /// Create a new frame socket from partially read data.
    pub fn from_partially_read(stream: Stream, part: Vec<u8>) -> Self {
        FrameSocket { stream, codec: FrameCodec::from_partially_read(part, READ_BUF_LEN) }
    }

    /// Extract a stream from the socket.
    pub fn into_inner(self) -> (Stream, BytesMut) {
        (self.stream, self.codec.in_buffer)
    }

    /// Returns a shared reference to the inner stream.
    pub fn get_ref(&self) -> &Stream {
        &self.stream
    }

    /// Returns a mutable reference to the inner stream.
    pub fn get_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Read,
{
    /// Read a frame from stream.
    pub fn read(&mut self, max_size: Option<usize>) -> Result<Option<Frame>> {
        self.codec.read_frame(&mut self.stream, max_size, false, true)
    }
}

impl<Stream> FrameSocket<Stream>
where
    Stream: Write,
{
    /// Writes and immediately flushes a frame.
    /// Equivalent to calling [`write`](Self::write) then [`flush`](Self::flush).
    pub fn send(&mut self, frame: Frame) -> Result<()> {
        self.write(frame)?;
        self.flush()
    }

    /// Write a frame to stream.
    ///
    /// A subsequent call should be made to [`flush`](Self::flush) to flush writes.
    ///
    /// This function guarantees that the frame is queued unless [`Error::WriteBufferFull`]
    /// is returned.
    /// In order to handle WouldBlock or Incomplete, call [`flush`](Self::flush) afterwards.
    pub fn write(&mut self, frame: Frame) -> Result<()> {
        self.codec.buffer_frame(&mut self.stream, frame)
    }

    /// Flush writes.
    pub fn flush(&mut self) -> Result<()> {
        self.codec.write_out_buffer(&mut self.stream)?;
        Ok(self.stream.flush()?)
    }
}

/// A codec for WebSocket frames.
#[derive(Debug)]
pub(super) struct FrameCodec {
    /// Buffer to read data from the stream.
    in_buffer: BytesMut,
    in_buf_max_read: usize,
    /// Buffer to send packets to the network.
    out_buffer: Vec<u8>,
    /// Capacity limit for `out_buffer`.
    max_out_buffer_len: usize,
    /// Buffer target length to reach before writing to the stream
    /// on calls to `buffer_frame`.
    ///
    /// Setting this to non-zero will buffer small writes from hitting
    /// the stream.
    out_buffer_write_len: usize,
    /// Header and remaining size of the incoming packet being processed.
    header: Option<(FrameHeader, u64)>,
}

impl FrameCodec {
    /// Create a new frame codec.
    pub(super) fn new(in_buf_len: usize) -> Self {
        Self {
            // authbridge patch (vendor/README.md, change 9): no read
            // buffer until bytes arrive (`read_in`).
            in_buffer: BytesMut::new(),
            in_buf_max_read: in_buf_len.max(FrameHeader::MAX_SIZE),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
        }
    }

    /// Create a new frame codec from partially read data.
    pub(super) fn from_partially_read(part: Vec<u8>, min_in_buf_len: usize) -> Self {
        let mut in_buffer = BytesMut::from_iter(part);
        in_buffer.reserve(min_in_buf_len.saturating_sub(in_buffer.len()));
        Self {
            in_buffer,
            in_buf_max_read: min_in_buf_len.max(FrameHeader::MAX_SIZE),
            out_buffer: <_>::default(),
            max_out_buffer_len: usize::MAX,
            out_buffer_write_len: 0,
            header: None,
        }
    }

    /// Sets a maximum size for the out buffer.
    pub(super) fn set_max_out_buffer_len(&mut self, max: usize) {
        self.max_out_buffer_len = max;
    }

    /// Sets [`Self::buffer_frame`] buffer target length to reach before
    /// writing to the stream.
    pub(super) fn set_out_buffer_write_len(&mut self, len: usize) {
        self.out_buffer_write_len = len;
    }

    /// Read a frame from the provided stream.
    pub(super) fn read_frame(
        &mut self,
        stream: &mut impl Read,
        max_size: Option<usize>,
        unmask: bool,
        accept_unmasked: bool,
    ) -> Result<Option<Frame>> {
        let max_size = max_size.unwrap_or_else(usize::max_value);

        let mut payload = loop {
            if self.header.is_none() {
                let mut cursor = Cursor::new(&mut self.in_buffer);
                self.header = FrameHeader::parse(&mut cursor)?;
                let advanced = cursor.position();
                bytes::Buf::advance(&mut self.in_buffer, advanced as _);

                if let Some((_, len)) = &self.header {
                    // Enforce frame size limit early. Compare in u64 before
                    // narrowing so a length above usize::MAX can't wrap on
                    // 32-bit/wasm32 targets and slip past the check.
                    if *len > max_size as u64 {
                        return Err(Error::Capacity(CapacityError::MessageTooLong {
                            size: *len as usize,
                            max_size,
                        }));
                    }
                    let len = *len as usize;

                    // Reserve full message length only once, even for multiple
                    // loops or if WouldBlock errors cause multiple fn calls.
                    self.in_buffer.reserve(len);
                } else if !self.in_buffer.is_empty() {
                    // authbridge patch (change 9): room for the rest of a
                    // partly read header; an empty buffer is not allocated to wait.
                    self.in_buffer.reserve(FrameHeader::MAX_SIZE);
                }
            }

            if let Some((_, len)) = &self.header {
                let len = *len as usize;
                if len <= self.in_buffer.len() {
                    let payload = self.in_buffer.split_to(len);
                    // authbridge patch (change 9): an emptied buffer is
                    // let go (the payload keeps what it needs of it), so an idle
                    // connection holds no read buffer.
                    if self.in_buffer.is_empty() {
                        self.in_buffer = BytesMut::new();
                    }
                    break payload;
                }
            }

            // Not enough data in buffer.
            if self.read_in(stream)? == 0 {
                trace!("no frame received");
                return Ok(None);
            }
        };

        let (mut header, length) = self.header.take().expect("Bug: no frame header");
        debug_assert_eq!(payload.len() as u64, length);

        if unmask {
            if let Some(mask) = header.mask.take() {
                // A server MUST remove masking for data frames received from a client
                // as described in Section 5.3. (RFC 6455)
                apply_mask(&mut payload, mask);
            } else if !accept_unmasked {
                // The server MUST close the connection upon receiving a
                // frame that is not masked. (RFC 6455)
                // The only exception here is if the user explicitly accepts given
                // stream by setting WebSocketConfig.accept_unmasked_frames to true
                return Err(Error::Protocol(ProtocolError::UnmaskedFrameFromClient));
            }
        }

        let frame = Frame::from_payload(header, payload.freeze());
        trace!("received frame {frame}");
        Ok(Some(frame))
    }

    /// Read into available `in_buffer` capacity.
    fn read_in(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        let len = self.in_buffer.len();
        // authbridge patch (change 9): with no room left (an empty,
        // unallocated buffer, or one filled to its capacity), read through this
        // thread's scratch buffer and keep only what arrived, so a connection
        // waiting for its next frame keeps no buffer of its own.
        if self.in_buffer.capacity() == len {
            return READ_SCRATCH.with_borrow_mut(|scratch| {
                if scratch.len() < self.in_buf_max_read {
                    scratch.resize(self.in_buf_max_read, 0);
                }
                let size = stream.read(&mut scratch[..self.in_buf_max_read])?;
                self.in_buffer.extend_from_slice(&scratch[..size]);
                Ok(size)
            });
        }
        self.in_buffer.resize(self.in_buffer.capacity().min(len + self.in_buf_max_read), 0);
        let size = stream.read(&mut self.in_buffer[len..]);
        self.in_buffer.truncate(len + size.as_ref().copied().unwrap_or(0));
        size
    }

    /// Writes a frame into the `out_buffer`.
    /// If the out buffer size is over the `out_buffer_write_len` will also write
    /// the out buffer into the provided `stream`.
    ///
    /// To ensure buffered frames are written call [`Self::write_out_buffer`].
    ///
    /// May write to the stream, will **not** flush.
    pub(super) fn buffer_frame<Stream>(&mut self, stream: &mut Stream, frame: Frame) -> Result<()>
    where
        Stream: Write,
    {
        if frame.len() + self.out_buffer.len() > self.max_out_buffer_len {
            return Err(Error::WriteBufferFull(Message::Frame(frame).into()));
        }

        trace!("writing frame {frame}");

        self.out_buffer.reserve(frame.len());
        frame.format_into_buf(&mut self.out_buffer).expect("Bug: can't write to vector");

        if self.out_buffer.len() > self.out_buffer_write_len {
            self.write_out_buffer(stream)
        } else {
            Ok(())
        }
    }

    /// Writes the out_buffer to the provided stream.
    ///
    /// Does **not** flush.
    pub(super) fn write_out_buffer<Stream>(&mut self, stream: &mut Stream) -> Result<()>
    where
        Stream: Write,
    {
        while !self.out_buffer.is_empty() {
            let len = stream.write(&self.out_buffer)?;
            if len == 0 {
                // This is the same as "Connection reset by peer"
                return Err(IoError::new(
                    IoErrorKind::ConnectionReset,
                    "Connection reset while sending",
                )
                .into());
            }
            self.out_buffer.drain(0..len);
        }
        // authbridge patch (vendor/README.md, change 10): a written-out
        // buffer is let go, so an idle connection holds no write buffer either.
        self.out_buffer = Vec::new();

        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use crate::error::{CapacityError, Error};

    use super::{
        coding::{Data, OpCode},
        Frame, FrameCodec, FrameSocket,
    };

    use std::io::Cursor;

    #[test]
    fn read_frames() {
        env_logger::init();

        let raw = Cursor::new(vec![
            0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x82, 0x03, 0x03, 0x02, 0x01,
            0x99,
        ]);
        let mut sock = FrameSocket::new(raw);

        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
        assert_eq!(sock.read(None).unwrap().unwrap().into_payload(), &[0x03, 0x02, 0x01][..]);
        assert!(sock.read(None).unwrap().is_none());

        let (_, rest) = sock.into_inner();
        assert_eq!(rest, vec![0x99]);
    }

    #[test]
    fn from_partially_read() {
        let raw = Cursor::new(vec![0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::from_partially_read(raw, vec![0x82, 0x07, 0x01]);
        assert_eq!(
            sock.read(None).unwrap().unwrap().into_payload(),
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07][..]
        );
    }

    #[test]
    fn write_frames() {
        let mut sock = FrameSocket::new(Vec::new());

        let frame = Frame::ping(vec![0x04, 0x05]);
        sock.send(frame).unwrap();

        let frame = Frame::pong(vec![0x01]);
        sock.send(frame).unwrap();

        let (buf, _) = sock.into_inner();
        assert_eq!(buf, vec![0x89, 0x02, 0x04, 0x05, 0x8a, 0x01, 0x01]);
    }

    #[test]
    fn parse_overflow() {
        let raw = Cursor::new(vec![
            0x83, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        ]);
        let mut sock = FrameSocket::new(raw);
        let _ = sock.read(None); // should not crash
    }

    #[test]
    fn size_limit_hit() {
        let raw = Cursor::new(vec![0x82, 0x07, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(Some(5)),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 7, max_size: 5 }))
        ));
    }

    /// authbridge patch (vendor/README.md, changes 9 and 10): a reader
    /// that hands out its bytes in the given pieces, and `WouldBlock` between them,
    /// as a non-blocking socket does.
    struct Pieces {
        pieces: std::collections::VecDeque<Vec<u8>>,
        blocked: bool,
    }

    impl Pieces {
        fn new(bytes: &[u8], sizes: &[usize]) -> Self {
            let mut pieces = std::collections::VecDeque::new();
            let mut rest = bytes;
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*size).min(rest.len()));
                pieces.push_back(piece.to_vec());
                rest = tail;
            }
            Self { pieces, blocked: false }
        }
    }

    impl std::io::Read for Pieces {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // Every other call blocks, as a socket waiting for the next packet.
            self.blocked = !self.blocked;
            if self.blocked {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let Some(piece) = self.pieces.front_mut() else { return Ok(0) };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.pieces.pop_front();
            }
            Ok(n)
        }
    }

    fn encoded(frames: &[Frame]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for frame in frames {
            frame.clone().format_into_buf(&mut bytes).unwrap();
        }
        bytes
    }

    /// Reads frames until the reader is exhausted, retrying on `WouldBlock`.
    fn read_all(codec: &mut FrameCodec, reader: &mut Pieces) -> Vec<Vec<u8>> {
        let mut payloads = Vec::new();
        loop {
            match codec.read_frame(reader, None, false, true) {
                Ok(Some(frame)) => payloads.push(frame.into_payload().to_vec()),
                Ok(None) => return payloads,
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read_frame: {e}"),
            }
        }
    }

    #[test]
    fn a_codec_waiting_for_a_frame_holds_no_read_buffer() {
        let mut codec = FrameCodec::new(1024);
        assert_eq!(codec.in_buffer.capacity(), 0, "no buffer before the first byte");

        let mut reader = Pieces::new(&encoded(&[Frame::message("2probe", OpCode::Data(Data::Text), true)]), &[64]);
        // Nothing has arrived yet: waiting allocates nothing.
        assert!(matches!(
            codec.read_frame(&mut reader, None, false, true),
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock
        ));
        assert_eq!(codec.in_buffer.capacity(), 0);

        let frame = codec.read_frame(&mut reader, None, false, true).unwrap().unwrap();
        assert_eq!(frame.into_payload(), b"2probe"[..]);
        assert_eq!(codec.in_buffer.capacity(), 0, "the emptied buffer is let go");
    }

    #[test]
    fn a_written_out_codec_holds_no_write_buffer() {
        let mut codec = FrameCodec::new(1024);
        let mut out = Vec::new();
        codec.buffer_frame(&mut out, Frame::message("3", OpCode::Data(Data::Text), true)).unwrap();
        assert_eq!(out, [0x81, 0x01, b'3']);
        assert_eq!(codec.out_buffer.capacity(), 0, "the written buffer is let go");

        // Buffered frames stay until written out, then the buffer goes.
        codec.set_out_buffer_write_len(1024);
        codec.buffer_frame(&mut out, Frame::message("3", OpCode::Data(Data::Text), true)).unwrap();
        assert_eq!(codec.out_buffer.len(), 3);
        codec.write_out_buffer(&mut out).unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(codec.out_buffer.capacity(), 0);
    }

    #[test]
    fn frames_arriving_in_any_pieces_are_read_whole() {
        // Small frames back to back, one longer than the read size, an empty one,
        // one with a 64-bit length.
        let big = "x".repeat(5000);
        let huge = "y".repeat(70_000);
        let frames = [
            Frame::message("40", OpCode::Data(Data::Text), true),
            Frame::message(big.clone(), OpCode::Data(Data::Text), true),
            Frame::message("", OpCode::Data(Data::Text), true),
            Frame::message("2", OpCode::Data(Data::Text), true),
            Frame::message(huge.clone(), OpCode::Data(Data::Binary), true),
            Frame::message("3", OpCode::Data(Data::Text), true),
        ];
        let bytes = encoded(&frames);
        let want: Vec<Vec<u8>> =
            ["40", big.as_str(), "", "2", huge.as_str(), "3"].iter().map(|p| p.as_bytes().to_vec()).collect();
        for sizes in [&[1][..], &[2, 3], &[7], &[13, 1, 300], &[1024], &[4096, 5], &[bytes.len()]] {
            for read_len in [16, 1024, 128 * 1024] {
                let mut codec = FrameCodec::new(read_len);
                let mut reader = Pieces::new(&bytes, sizes);
                assert_eq!(read_all(&mut codec, &mut reader), want, "pieces {sizes:?}, reads of {read_len}");
                assert_eq!(codec.in_buffer.capacity(), 0);
            }
        }
    }

    #[test]
    #[cfg(target_pointer_width = "32")]
    fn length_above_usize_max_rejected() {
        // 64-bit payload length 0x1_0000_0005 does not fit a 32-bit usize; it
        // must be rejected rather than wrapping to 5 when narrowed.
        let raw = Cursor::new(vec![0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05]);
        let mut sock = FrameSocket::new(raw);
        assert!(matches!(
            sock.read(None),
            Err(Error::Capacity(CapacityError::MessageTooLong { size: 5, max_size: usize::MAX }))
        ));
    }
}
