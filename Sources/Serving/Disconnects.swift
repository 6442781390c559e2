import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The connections a server holds, so that a request can learn when its client went away: its texts waiting in
/// a model's queue are then dropped instead of computed for nobody. (Hummingbird tells a handler nothing of the
/// kind; a handler in each connection's pipeline sees the end of the client's input and its close.)
final class Connections: Sendable {
    private let open = Mutex<[ObjectIdentifier: Connection]>([:])

    /// A connection's state: whether its client has gone, and what to do when it goes.
    final class Connection: Sendable {
        private let state = Mutex<(gone: Bool, actions: [@Sendable () -> Void])>((false, []))

        /// Runs `action` when the client goes (at once if it has gone); returns nothing to undo: the actions of
        /// a connection live as long as it does, and a finished request's action does nothing.
        func whenGone(_ action: @escaping @Sendable () -> Void) {
            let now = state.withLock { state -> Bool in
                if !state.gone { state.actions.append(action) }
                return state.gone
            }
            if now { action() }
        }

        /// Drops the actions of requests already answered (keep-alive connections serve many).
        func clearActions() { state.withLock { $0.actions.removeAll() } }

        fileprivate func markGone() {
            let actions = state.withLock { state -> [@Sendable () -> Void] in
                defer { state = (true, []) }
                return state.gone ? [] : state.actions
            }
            for action in actions { action() }
        }
    }

    /// The connection of `channel` (nil when it was never watched, or has closed).
    func connection(of channel: any Channel) -> Connection? { open.withLock { $0[ObjectIdentifier(channel)] } }

    /// A handler for a new connection's pipeline.
    func watcher() -> Watcher { Watcher(connections: self) }

    /// Registers its channel's connection while the channel lives; marks it gone at the end of input or close.
    final class Watcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        private let connections: Connections
        private let connection = Connection()

        init(connections: Connections) { self.connections = connections }

        func handlerAdded(context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            connections.open.withLock { $0[id] = connection }
        }

        func handlerRemoved(context: ChannelHandlerContext) { gone(context) }

        func channelInactive(context: ChannelHandlerContext) {
            gone(context)
            context.fireChannelInactive()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed? = event as? ChannelEvent { connection.markGone() }
            context.fireUserInboundEventTriggered(event)
        }

        private func gone(_ context: ChannelHandlerContext) {
            let id = ObjectIdentifier(context.channel)
            connections.open.withLock { _ = $0.removeValue(forKey: id) }
            connection.markGone()
        }
    }
}

/// The request context of `finetune serve`: Hummingbird's, and the connection the request came on.
struct ServeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
