import GatewayConfig
import RedisClient

extension GatewaySettings.Redis {
    /// The URL every Redis client and subscriber of the process connects with: `url`, and for a
    /// `rediss` scheme the context and server name of the `tls` block (without one, the system's
    /// trust store and the URL's host).
    func clientURL() throws -> RedisURL {
        var url = try RedisURL(self.url)
        if url.tls != nil, let tls = self.tls {
            url.tls = RedisTLS(context: try tls.makeRedisClientContext(), serverName: tls.serverName)
        }
        return url
    }
}
