//! ctrdiag's own API called directly (not through the CLI), so a test can send what
//! the CLI never would, and as any uid/gid/groups: the connecting thread takes those
//! credentials for the connect only, so the socket's file mode and the daemon's
//! SO_PEERCRED check see exactly what a process of that user would show them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ctrdiag::api::v1::diagnostics_client::DiagnosticsClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

pub type Client = DiagnosticsClient<Channel>;

/// Who connects: kernel credentials, as `Command::uid/gid/groups` would set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Creds {
    pub const ROOT: Creds = Creds {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
    };
}

/// Connects to `socket` as root.
pub async fn connect(socket: &Path) -> Client {
    connect_as(socket, &Creds::ROOT)
        .await
        .expect("root connects to the daemon's socket")
}

/// Connects to `socket` with `creds`: `Err` is the connect(2) error (the socket's
/// mode refused the caller). The credentials are set on one short-lived thread with
/// the raw system calls (which, unlike libc's wrappers, change only the calling
/// thread), so the test process itself stays root.
pub async fn connect_as(socket: &Path, creds: &Creds) -> std::io::Result<Client> {
    channel_as(socket, creds).await.map(DiagnosticsClient::new)
}

/// The connection itself, for calls the generated client cannot make ([`raw_call`]).
pub async fn channel_as(socket: &Path, creds: &Creds) -> std::io::Result<Channel> {
    let stream = {
        let socket = socket.to_path_buf();
        let creds = creds.clone();
        std::thread::spawn(move || connect_on_this_thread(&socket, &creds))
            .join()
            .expect("connect thread")?
    };
    stream.set_nonblocking(true)?;
    let once = Arc::new(Mutex::new(Some(stream)));
    Endpoint::from_static("http://[::]")
        .connect_with_connector(tower::service_fn(move |_| {
            let taken = once.lock().unwrap().take();
            async move {
                let s = taken.ok_or_else(|| std::io::Error::other("this client connects once"))?;
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::from_std(s)?))
            }
        }))
        .await
        .map_err(std::io::Error::other)
}

/// Sends `body` as the whole request message of `method` (e.g. "TestPull"), bytes
/// exactly as given (no protobuf encoding): what a broken or hostile client sends.
pub async fn raw_call(
    channel: Channel,
    method: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    use tonic::codegen::http::uri::PathAndQuery;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path: PathAndQuery = format!("/ctrdiag.v1.Diagnostics/{method}")
        .parse()
        .expect("method path");
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// Bytes in, bytes out: no protobuf on either side.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(buf, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

fn connect_on_this_thread(
    socket: &PathBuf,
    creds: &Creds,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    use nix::libc;
    if *creds != Creds::ROOT {
        let groups: Vec<libc::gid_t> = creds.groups.clone();
        // SAFETY: raw per-thread credential changes on this thread only, which ends
        // right after the connect; the arguments are plain integers and a live slice.
        let ok = unsafe {
            libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) == 0
                && libc::syscall(libc::SYS_setresgid, creds.gid, creds.gid, creds.gid) == 0
                && libc::syscall(libc::SYS_setresuid, creds.uid, creds.uid, creds.uid) == 0
        };
        if !ok {
            return Err(std::io::Error::last_os_error());
        }
    }
    std::os::unix::net::UnixStream::connect(socket)
}
