import CostdCore
import CostdProtocol
import NIOCore

/// `subscribe`: budget alerts as JSON-RPC notifications on the caller's connection.
extension CostdEngine {
    /// `{since?}` → `{subscribed: true, lastId}`, then an `alert` notification per alert: those
    /// after `since` first (none without it), then each new one, whichever daemon fired it.
    func subscribe(_ params: Params, channel: (any Channel)?, on eventLoop: any EventLoop) throws(RPCError) -> MethodReply {
        guard let channel else { throw .invalidRequest("subscribe needs a connection of its own") }
        var since: AlertId? = nil
        if let text = try params.string("since", maxLength: 64) {
            guard let id = AlertId(text) else { throw .invalidParams("'since' must be an alert id, like 1796000000000-0") }
            since = id
        }
        let answered = eventLoop.makePromise(of: [UInt8].self)
        let alerts = self.alerts
        let lastId = ledger.lastAlertId
        // The answer goes out first (the connection writes it as the promise completes), then
        // the replay and the live alerts.
        eventLoop.execute {
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("subscribed", true)
            writer.key("lastId")
            if let lastId { writer.string(lastId.description) } else { writer.null() }
            writer.comma()
            writer.endObject()
            answered.succeed(writer.bytes)
            alerts.subscribe(channel, since: since)
        }
        return .later(answered.futureResult)
    }
}
