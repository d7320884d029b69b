import NIOCore

/// A call of one Lua script: its keys and arguments by name, and its reply parsed in one place
/// (valkey-swift's one-type-per-command, for scripts). Each conforming type lives next to its
/// Lua source.
public protocol RedisScriptCall: Sendable {
    associatedtype Reply: Sendable
    static var script: RedisScript { get }
    /// `KEYS`, in the order the script reads them.
    var keys: [String] { get }
    /// Appends `ARGV`, in the order the script reads them.
    func appendArguments(to command: inout RedisCommand)
    static func parse(_ reply: RedisReply) throws(RedisScriptError) -> Reply
}

/// A script's reply was not what its Lua returns, or Redis refused it (an error reply).
public struct RedisScriptError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    static func unexpected<Call: RedisScriptCall>(_ reply: RedisReply, of call: Call.Type) -> RedisScriptError {
        if let message = reply.errorMessage { return RedisScriptError("\(Call.self): \(message)") }
        return RedisScriptError("\(Call.self): unexpected reply \(reply)")
    }
}

extension RedisScriptCall {
    /// `EVALSHA sha numkeys keys... arguments...`: the one way a script is called, alone or in a
    /// pipeline. ``RedisClient`` answers `NOSCRIPT` with `EVAL` of the same call.
    public var command: RedisCommand {
        let keys = self.keys
        var command = RedisCommand.make(RedisClient.evalsha, Self.script.sha1, keys.count)
        command.append(contentsOf: keys)
        appendArguments(to: &command)
        return command
    }
}

extension RedisClient {
    /// Runs a script call and parses its reply.
    public func run<Call: RedisScriptCall>(_ call: Call, timeoutMillis: Int64, on eventLoop: any EventLoop)
        -> EventLoopFuture<Call.Reply>
    {
        registerScript(Call.script)
        return execute([call.command], timeoutMillis: timeoutMillis, on: eventLoop).flatMapThrowing { replies in
            try Call.parse(replies[0])
        }
    }
}

/// Lua shared by the scripts that end reservations (record, reserve, release): one copy,
/// prepended to each.
enum ReservationLua {
    /// `giveBack(amounts, expiry, totals, id)`: ends a reservation and gives its money back to
    /// the reserved totals of its day and month, and of the scoped budgets it held money
    /// against (their fields follow, separated by U+001E). Returns whether it was open.
    static let giveBack = #"""
        local function giveBack(amounts, expiry, totals, id)
          redis.call('ZREM', expiry, id)
          local held = redis.call('HGET', amounts, id)
          if not held then return false end
          local amount, day, month, scoped = string.match(held, '^(%-?%d+)|([^|]*)|([^|]*)|?(.*)$')
          redis.call('HINCRBY', totals, 'd:' .. day, -tonumber(amount))
          redis.call('HINCRBY', totals, 'm:' .. month, -tonumber(amount))
          for field in string.gmatch(scoped, '[^\30]+') do redis.call('HINCRBY', totals, field, -tonumber(amount)) end
          redis.call('HDEL', amounts, id)
          return true
        end

        """#
}
