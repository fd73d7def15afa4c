//! The session's audio stream: speakers' PCM chunks appended to Kinesis, partitioned by session
//! id so each session's chunks stay in order.

use aws_sdk_kinesis::primitives::Blob;
use base64::Engine as _;
use serde::Serialize;
use session_core::ids::SessionId;
use session_core::protocol::ChunkId;
use session_core::protocol::ProtocolError;
use session_core::validation::{LanguageCode, QualityTier};

/// Where audio chunks go.
#[derive(Debug, Clone)]
pub struct AudioSink {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

/// One record of the stream, as the translation pipeline reads it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioRecord<'a> {
    pub session_id: &'a SessionId,
    pub chunk_id: &'a ChunkId,
    /// The client's capture time, milliseconds since the epoch.
    pub timestamp: u64,
    pub source_language: LanguageCode,
    pub quality_tier: QualityTier,
    /// 16 kHz mono s16le PCM, base64.
    pub audio_data: String,
}

impl AudioSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> AudioSink {
        AudioSink { client, stream: stream.into() }
    }

    /// Appends one chunk to the session's partition.
    pub async fn append(&self, record: &AudioRecord<'_>) -> Result<(), ProtocolError> {
        let data = serde_json::to_vec(record).map_err(|error| session_core::refusals::internal(&error))?;
        let result = self
            .client
            .put_record()
            .stream_name(&self.stream)
            .partition_key(record.session_id.as_str())
            .data(Blob::new(data))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if session_core::aws_errors::is_unavailable(&error) => {
                let error = aws_sdk_kinesis::error::DisplayErrorContext(&error);
                tracing::warn!(stream = %self.stream, %error, "audio stream unavailable");
                Err(ProtocolError::unavailable("the audio stream is busy; resend the chunk"))
            }
            Err(error) => Err(session_core::refusals::internal(&aws_sdk_kinesis::error::DisplayErrorContext(&error))),
        }
    }
}

/// Standard base64, as clients send `audioData`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
