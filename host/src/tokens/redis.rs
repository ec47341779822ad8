//! The fleet store: Redis, shared by every sidecar of a fleet. Each token is a hash; every
//! transition is one Lua script run atomically on the server, so sidecars never race on a
//! read-modify-write. Expiry and the grace window are Redis TTLs; an index keeps listing cheap.

use super::{
    Millis, Operation, Outcome, Presented, Redemption, StoreError, Token, TokenState, TokenStore,
};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::time::Duration;

/// Redeem a token: the contract's order of checks, in one step on the server.
/// KEYS[1] token hash; ARGV: now, fingerprint, session, sandbox, agent ('' if none), kind.
/// Tokens stored before `kind` was recorded were all `local.exec` or `tool.call`.
const REDEEM: &str = r"
local t = redis.call('HMGET', KEYS[1], 'state', 'expires', 'fingerprint', 'session', 'sandbox', 'agent', 'kind')
local state = t[1]
if not state then return 'not_found' end
if state == 'consumed' then return 'already_consumed' end
if state == 'revoked' then return 'revoked' end
if state == 'expired' then return 'expired' end
if tonumber(ARGV[1]) >= tonumber(t[2]) then
  redis.call('HSET', KEYS[1], 'state', 'expired')
  return 'expired'
end
if t[3] ~= ARGV[2] then return 'fingerprint_mismatch' end
if t[7] then
  if t[7] ~= ARGV[6] then return 'fingerprint_mismatch' end
elseif ARGV[6] ~= 'local.exec' and ARGV[6] ~= 'tool.call' then
  return 'fingerprint_mismatch'
end
if t[4] ~= ARGV[3] or t[5] ~= ARGV[4] or (t[6] ~= '' and t[6] ~= ARGV[5]) then
  return 'context_mismatch'
end
if state == 'approved' then
  redis.call('HSET', KEYS[1], 'state', 'consumed')
  return 'allowed'
end
return 'pending'
";

/// Apply an operator's action: the contract's management table, in one step on the server.
/// KEYS[1] token hash; ARGV: now, 'approve' | 'revoke'. Approving an approved token is `ok`
/// with no expiry check (firma's rule); the next retry is the one told 'expired'.
const APPLY: &str = r"
local t = redis.call('HMGET', KEYS[1], 'state', 'expires')
local state = t[1]
if not state then return 'not_found' end
local op = ARGV[2]
if state == 'approved' and op == 'approve' then return 'ok' end
if (state == 'pending' or state == 'approved') and tonumber(ARGV[1]) >= tonumber(t[2]) then
  state = 'expired'
  redis.call('HSET', KEYS[1], 'state', state)
end
if state == 'pending' or state == 'approved' then
  if op == 'approve' then state = 'approved' else state = 'revoked' end
  redis.call('HSET', KEYS[1], 'state', state)
  return 'ok'
end
if state == 'consumed' then return 'already_consumed' end
if state == 'revoked' then
  if op == 'approve' then return 'already_revoked' else return 'ok' end
end
return 'expired'
";

/// Compare and set a token's state. KEYS[1] token hash; ARGV: from, to. Returns 1 if set.
const SET_STATE_IF: &str = r"
if redis.call('HGET', KEYS[1], 'state') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', ARGV[2])
  return 1
end
return 0
";

/// Tokens in Redis, under a key prefix.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    grace_ms: Millis,
    redeem: Script,
    apply: Script,
    set_state_if: Script,
}

fn fail(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl RedisStore {
    /// Connect to `url` (for example `redis://127.0.0.1:6379/0`). The connection manager
    /// reconnects by itself after Redis restarts; until then every call fails closed.
    pub async fn connect(
        url: &str,
        prefix: &str,
        grace_ms: Millis,
    ) -> Result<Self, crate::error::Error> {
        let config_err = |e: redis::RedisError| {
            crate::error::Error::config(format!("cannot use the Redis token store `{url}`: {e}"))
        };
        let client = redis::Client::open(url).map_err(config_err)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(config_err)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            grace_ms,
            redeem: Script::new(REDEEM),
            apply: Script::new(APPLY),
            set_state_if: Script::new(SET_STATE_IF),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}token:{id}", self.prefix)
    }

    fn index(&self) -> String {
        format!("{}tokens", self.prefix)
    }

    async fn read(&self, id: &str) -> Result<Option<Token>, StoreError> {
        let mut conn = self.conn.clone();
        let (state, body): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key(id))
            .arg("state")
            .arg("body")
            .query_async(&mut conn)
            .await
            .map_err(fail)?;
        let (Some(state), Some(body)) = (state, body) else {
            return Ok(None);
        };
        let mut token: Token = serde_json::from_str(&body)
            .map_err(|e| StoreError(format!("a stored token is corrupt: {e}")))?;
        token.state = parse_state(&state)?;
        Ok(Some(token))
    }
}

fn parse_state(s: &str) -> Result<TokenState, StoreError> {
    Ok(match s {
        "pending" => TokenState::Pending,
        "approved" => TokenState::Approved,
        "consumed" => TokenState::Consumed,
        "revoked" => TokenState::Revoked,
        "expired" => TokenState::Expired,
        other => {
            return Err(StoreError(format!(
                "a stored token has an unknown state `{other}`"
            )));
        }
    })
}

#[async_trait::async_trait]
impl TokenStore for RedisStore {
    async fn insert(&self, token: Token) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let body = serde_json::to_string(&token).map_err(|e| StoreError(e.to_string()))?;
        let key = self.key(&token.id);
        // The record lives until its grace window ends; Redis forgets it then by itself. The
        // TTL is relative to issue time, so a host clock other than Redis's cannot cut it short.
        // Redis takes a signed 64-bit TTL; no token needs more than a century.
        const CENTURY_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
        let ttl = token
            .expires_at_ms
            .saturating_sub(token.created_at_ms)
            .saturating_add(self.grace_ms)
            .clamp(1, CENTURY_MS);
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("state", token.state.as_str().to_owned()),
                    ("expires", token.expires_at_ms.to_string()),
                    ("fingerprint", token.fingerprint.clone()),
                    ("session", token.action.session_id().to_owned()),
                    ("sandbox", token.action.sandbox_id().to_owned()),
                    ("agent", token.action.agent_id().unwrap_or("").to_owned()),
                    ("kind", token.action.kind().to_owned()),
                    ("body", body),
                ],
            )
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore()
            .zadd(self.index(), &token.id, token.created_at_ms)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(fail)
    }

    async fn get(&self, id: &str, _now: Millis) -> Result<Option<Token>, StoreError> {
        self.read(id).await
    }

    async fn redeem(
        &self,
        id: &str,
        presented: &Presented<'_>,
        now: Millis,
    ) -> Result<Redemption, StoreError> {
        let mut conn = self.conn.clone();
        let action = presented.action;
        let answer: String = self
            .redeem
            .key(self.key(id))
            .arg(now)
            .arg(presented.fingerprint)
            .arg(action.session_id())
            .arg(action.sandbox_id())
            .arg(action.agent_id().unwrap_or(""))
            .arg(action.kind())
            .invoke_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(match answer.as_str() {
            "not_found" => Redemption::NotFound,
            "already_consumed" => Redemption::AlreadyConsumed,
            "revoked" => Redemption::Revoked,
            "expired" => Redemption::Expired,
            "fingerprint_mismatch" => Redemption::FingerprintMismatch,
            "context_mismatch" => Redemption::ContextMismatch,
            "allowed" => Redemption::Allowed,
            "pending" => Redemption::Pending,
            other => return Err(StoreError(format!("redis: unexpected answer `{other}`"))),
        })
    }

    async fn apply(&self, id: &str, op: Operation, now: Millis) -> Result<Outcome, StoreError> {
        let mut conn = self.conn.clone();
        let op = match op {
            Operation::Approve => "approve",
            Operation::Revoke => "revoke",
        };
        let answer: String = self
            .apply
            .key(self.key(id))
            .arg(now)
            .arg(op)
            .invoke_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(match answer.as_str() {
            "ok" => Outcome::Ok,
            "not_found" => Outcome::NotFound,
            "already_consumed" => Outcome::AlreadyConsumed,
            "already_revoked" => Outcome::AlreadyRevoked,
            "expired" => Outcome::Expired,
            other => return Err(StoreError(format!("redis: unexpected answer `{other}`"))),
        })
    }

    async fn set_state_if(
        &self,
        id: &str,
        from: TokenState,
        to: TokenState,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let set: i64 = self
            .set_state_if
            .key(self.key(id))
            .arg(from.as_str())
            .arg(to.as_str())
            .invoke_async(&mut conn)
            .await
            .map_err(fail)?;
        Ok(set == 1)
    }

    async fn live(&self, now: Millis) -> Result<Vec<Token>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.zrange(self.index(), 0, -1).await.map_err(fail)?;
        let mut live = Vec::new();
        for id in ids {
            if let Some(t) = self.read(&id).await?
                && matches!(t.state, TokenState::Pending | TokenState::Approved)
                && now < t.expires_at_ms
            {
                live.push(t);
            }
        }
        live.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(live)
    }

    async fn prune(&self, now: Millis, grace_ms: Millis) -> Result<usize, StoreError> {
        // Records expire through their TTL; forget index entries whose record is gone or due.
        let mut conn = self.conn.clone();
        let ids: Vec<String> = conn.zrange(self.index(), 0, -1).await.map_err(fail)?;
        let mut pruned = 0;
        for id in ids {
            let expires: Option<u64> = conn.hget(self.key(&id), "expires").await.map_err(fail)?;
            let due = expires.is_none_or(|e| now >= e.saturating_add(grace_ms));
            if due {
                let _: () = conn.del(self.key(&id)).await.map_err(fail)?;
                let removed: usize = conn.zrem(self.index(), &id).await.map_err(fail)?;
                if expires.is_some() && removed > 0 {
                    pruned += 1;
                }
            }
        }
        Ok(pruned)
    }
}
