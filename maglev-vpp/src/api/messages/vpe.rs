//! vpe.api and vlib.api: `show_version` and `cli_inband`.

use bytes::{BufMut, BytesMut};

use super::{Message, MsgId, Reply, Request, empty_message};
use crate::api::codec::{Codec, DecodeError, Reader, put_fixed_string, put_var_string};

empty_message!(
    /// `show_version`.
    ShowVersion
);

impl Request for ShowVersion {
    type Reply = ShowVersionReply;
}

/// `show_version_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShowVersionReply {
    /// `retval`.
    pub retval: i32,
    /// `program` (`string[32]`), e.g. `vpe`.
    pub program: String,
    /// `version` (`string[32]`), e.g. `26.10-rc0~374-gb575ec2c56d`.
    pub version: String,
    /// `build_date` (`string[32]`).
    pub build_date: String,
    /// `build_directory` (`string[256]`).
    pub build_directory: String,
}

impl Codec for ShowVersionReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.retval);
        put_fixed_string(buf, &self.program, 32);
        put_fixed_string(buf, &self.version, 32);
        put_fixed_string(buf, &self.build_date, 32);
        put_fixed_string(buf, &self.build_directory, 256);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("retval");
        let retval = r.i32()?;
        r.field("program");
        let program = r.fixed_string(32)?;
        r.field("version");
        let version = r.fixed_string(32)?;
        r.field("build_date");
        let build_date = r.fixed_string(32)?;
        r.field("build_directory");
        let build_directory = r.fixed_string(256)?;
        Ok(ShowVersionReply {
            retval,
            program,
            version,
            build_date,
            build_directory,
        })
    }
}

impl Message for ShowVersionReply {
    const ID: MsgId = MsgId::ShowVersionReply;
}

impl Reply for ShowVersionReply {
    fn retval(&self) -> i32 {
        self.retval
    }
}

/// `cli_inband`: run one CLI line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CliInband {
    /// `cmd` (variable string).
    pub cmd: String,
}

impl Codec for CliInband {
    fn encode(&self, buf: &mut BytesMut) {
        put_var_string(buf, &self.cmd);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("cmd");
        Ok(CliInband {
            cmd: r.var_string()?,
        })
    }
}

impl Message for CliInband {
    const ID: MsgId = MsgId::CliInband;
}

impl Request for CliInband {
    type Reply = CliInbandReply;
}

/// `cli_inband_reply`: the command's whole output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CliInbandReply {
    /// `retval`.
    pub retval: i32,
    /// `reply` (variable string).
    pub reply: String,
}

impl Codec for CliInbandReply {
    fn encode(&self, buf: &mut BytesMut) {
        buf.put_i32(self.retval);
        put_var_string(buf, &self.reply);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.field("retval");
        let retval = r.i32()?;
        r.field("reply");
        let reply = r.var_string()?;
        Ok(CliInbandReply { retval, reply })
    }
}

impl Message for CliInbandReply {
    const ID: MsgId = MsgId::CliInbandReply;
}

impl Reply for CliInbandReply {
    fn retval(&self) -> i32 {
        self.retval
    }
}
