//! Facts a CLI build reports about itself in `system/init` and in the `initialize` answer:
//! its capability flags and whether its sandbox is on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CliVersion;

const V2_1_329: CliVersion = CliVersion::new(2, 1, 329);
const V2_1_332: CliVersion = CliVersion::new(2, 1, 332);

/// Defines [`Capability`] from one table: variant, wire name, first release it was recorded in.
macro_rules! capabilities {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal, $since:ident;)*) => {
        /// One entry of `capabilities` (in `system/init` and in the `initialize` answer): a
        /// feature flag of the CLI build, spelled as on the wire.
        ///
        /// The names recorded from 2.1.329 and 2.1.332 are variants; any other name is kept in
        /// [`Capability::Other`], so a newer CLI's list still round-trips exactly.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Capability {
            $($(#[doc = $doc])* $variant,)*
            /// A name this crate does not know yet, as on the wire.
            Other(String),
        }

        impl Capability {
            /// Every known capability, in the order the CLI lists them.
            pub const KNOWN: &'static [Capability] = &[$(Capability::$variant,)*];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(s) => s,
                }
            }

            /// The first CLI release whose recorded frames list this capability (`None` for
            /// [`Capability::Other`]). 2.1.329 is the oldest release recorded, so `2.1.329`
            /// means "2.1.329 or earlier".
            pub fn recorded_since(&self) -> Option<CliVersion> {
                match self {
                    $(Self::$variant => Some($since),)*
                    Self::Other(_) => None,
                }
            }
        }

        impl FromStr for Capability {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                })
            }
        }
    };
}

capabilities! {
    /// `interrupt_receipt_v1`: `interrupt` is answered with a receipt (`still_queued`).
    InterruptReceiptV1 = "interrupt_receipt_v1", V2_1_329;
    /// `interrupt_cancel_queued_v1`: an interrupt can cancel queued user messages.
    InterruptCancelQueuedV1 = "interrupt_cancel_queued_v1", V2_1_329;
    /// `interrupt_send_now_v1`: a queued message can be sent at once, interrupting the turn.
    InterruptSendNowV1 = "interrupt_send_now_v1", V2_1_329;
    /// `interrupt_requeue_taken_v1`: messages taken by an interrupted turn are requeued.
    InterruptRequeueTakenV1 = "interrupt_requeue_taken_v1", V2_1_329;
    /// `msg_lifecycle_v1`: `command_lifecycle` frames for user lines with a uuid.
    MsgLifecycleV1 = "msg_lifecycle_v1", V2_1_329;
    /// `request_marker_lists_v1`.
    RequestMarkerListsV1 = "request_marker_lists_v1", V2_1_329;
    /// `ask_user_question_unanswered_v1`.
    AskUserQuestionUnansweredV1 = "ask_user_question_unanswered_v1", V2_1_329;
    /// `lifecycle_wakeup_source_v1`.
    LifecycleWakeupSourceV1 = "lifecycle_wakeup_source_v1", V2_1_329;
    /// `sdk_mcp_tools_list_changed`: in-process MCP servers may announce tool-list changes.
    SdkMcpToolsListChanged = "sdk_mcp_tools_list_changed", V2_1_329;
    /// `sdk_mcp_manifests`.
    SdkMcpManifests = "sdk_mcp_manifests", V2_1_329;
    /// `mcp_read_resource_v1`.
    McpReadResourceV1 = "mcp_read_resource_v1", V2_1_329;
    /// `mcp_tool_ui_meta_v1`.
    McpToolUiMetaV1 = "mcp_tool_ui_meta_v1", V2_1_329;
    /// `ui_surface_v1`.
    UiSurfaceV1 = "ui_surface_v1", V2_1_329;
    /// `mcp_call_result_not_for_model_v1`.
    McpCallResultNotForModelV1 = "mcp_call_result_not_for_model_v1", V2_1_329;
    /// `mcp_call_soft_error_result_v1` (new in 2.1.332): an MCP tool call may end in a soft
    /// error result.
    McpCallSoftErrorResultV1 = "mcp_call_soft_error_result_v1", V2_1_332;
    /// `mcp_call_check_permissions_v1`.
    McpCallCheckPermissionsV1 = "mcp_call_check_permissions_v1", V2_1_329;
    /// `voice_call_talk_line_v1`.
    VoiceCallTalkLineV1 = "voice_call_talk_line_v1", V2_1_329;
    /// `withdrawn_files_note_v2`.
    WithdrawnFilesNoteV2 = "withdrawn_files_note_v2", V2_1_329;
    /// `withdrawn_tools_v1` (new in 2.1.332, `system/init` only).
    WithdrawnToolsV1 = "withdrawn_tools_v1", V2_1_332;
    /// `ui_pane_widget_v1`.
    UiPaneWidgetV1 = "ui_pane_widget_v1", V2_1_329;
    /// `reload_plugins_refuse_if_busy_v1`.
    ReloadPluginsRefuseIfBusyV1 = "reload_plugins_refuse_if_busy_v1", V2_1_329;
    /// `get_usage_detached_v1`.
    GetUsageDetachedV1 = "get_usage_detached_v1", V2_1_329;
    /// `silent_resend_files_v1`.
    SilentResendFilesV1 = "silent_resend_files_v1", V2_1_329;
}

impl Capability {
    /// Whether this is one of [`Capability::KNOWN`].
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Capability {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(c) => c,
            Err(never) => match never {},
        }
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = crate::serde_util::Key::deserialize(deserializer)?;
        Ok(Capability::from(s.as_str()))
    }
}

/// `sandbox_enabled` (since 2.1.332, in `system/init` and the `initialize` answer): whether the
/// CLI runs its tools in its sandbox. The CLI's schema allows a bool or the string `"unknown"`;
/// any other string is kept in [`SandboxEnabled::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SandboxEnabled {
    /// `true`.
    Enabled,
    /// `false`.
    Disabled,
    /// `"unknown"`: the CLI could not tell (yet).
    Unknown,
    /// Any other string, as on the wire.
    Other(String),
}

impl SandboxEnabled {
    /// `Some(true)` / `Some(false)` for the bool forms, `None` otherwise.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Enabled => Some(true),
            Self::Disabled => Some(false),
            Self::Unknown | Self::Other(_) => None,
        }
    }
}

impl From<bool> for SandboxEnabled {
    fn from(on: bool) -> Self {
        if on { Self::Enabled } else { Self::Disabled }
    }
}

/// The two wire forms.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SandboxRepr<'a> {
    Bool(bool),
    Str(#[serde(borrow)] std::borrow::Cow<'a, str>),
}

impl Serialize for SandboxEnabled {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = match self {
            Self::Enabled => SandboxRepr::Bool(true),
            Self::Disabled => SandboxRepr::Bool(false),
            Self::Unknown => SandboxRepr::Str("unknown".into()),
            Self::Other(s) => SandboxRepr::Str(s.as_str().into()),
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SandboxEnabled {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match SandboxRepr::deserialize(deserializer)? {
            SandboxRepr::Bool(on) => on.into(),
            SandboxRepr::Str(s) if s == "unknown" => Self::Unknown,
            SandboxRepr::Str(s) => Self::Other(s.into_owned()),
        })
    }
}
