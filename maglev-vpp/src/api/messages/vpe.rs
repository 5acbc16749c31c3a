//! vpe.api and vlib.api: `show_version` and `cli_inband`.

use super::{empty_message, message};
use crate::api::codec::{FixedString, VarString, wire_struct};

empty_message!(
    /// `show_version`.
    ShowVersion, request ShowVersionReply
);

wire_struct! {
    /// `show_version_reply`.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct ShowVersionReply {
        /// `retval`.
        pub retval: i32,
        /// `program` (`string[32]`), e.g. `vpe`.
        pub program: String as FixedString<32>,
        /// `version` (`string[32]`), e.g. `26.10-rc0~374-gb575ec2c56d`.
        pub version: String as FixedString<32>,
        /// `build_date` (`string[32]`).
        pub build_date: String as FixedString<32>,
        /// `build_directory` (`string[256]`).
        pub build_directory: String as FixedString<256>,
    }
}
message!(ShowVersionReply, reply retval);

wire_struct! {
    /// `cli_inband`: run one CLI line.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct CliInband {
        /// `cmd` (variable string).
        pub cmd: String as VarString,
    }
}
message!(CliInband, request CliInbandReply);

wire_struct! {
    /// `cli_inband_reply`: the command's whole output.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct CliInbandReply {
        /// `retval`.
        pub retval: i32,
        /// `reply` (variable string).
        pub reply: String as VarString,
    }
}
message!(CliInbandReply, reply retval);
