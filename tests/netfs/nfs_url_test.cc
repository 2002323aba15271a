#include "netfs/nfs_url.h"

#include "tests/test_util.h"

namespace cachefs::testing {
namespace {

TEST(NfsUrlTest, ParsesHostPortExportAndVersion) {
  auto url = ParseNfsUrl("nfs://server.example:2050/srv/export/sub?version=3");
  ASSERT_OK(url);
  EXPECT_EQ(url->host, "server.example");
  EXPECT_EQ(url->port, 2050);
  EXPECT_EQ(url->path, "/srv/export/sub");
  EXPECT_EQ(url->version, 3);
  EXPECT_EQ(url->ToString(), "nfs://server.example:2050/srv/export/sub?version=3");
  EXPECT_EQ(url->ForLibnfs(),
            "nfs://server.example/srv/export/sub?version=3&nfsport=2050");
}

TEST(NfsUrlTest, VersionFourByDefaultOnItsWellKnownPort) {
  auto url = ParseNfsUrl("nfs://10.0.0.1/data");
  ASSERT_OK(url);
  EXPECT_EQ(url->version, 4);
  EXPECT_EQ(url->port, 0);
  EXPECT_EQ(url->ForLibnfs(), "nfs://10.0.0.1/data?version=4&nfsport=2049");
}

TEST(NfsUrlTest, Ipv6HostsAndMountPorts) {
  auto url = ParseNfsUrl("nfs://[::1]:3000/x?version=3&mountport=3001");
  ASSERT_OK(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 3000);
  EXPECT_EQ(url->mount_port, 3001);
  EXPECT_EQ(url->ForLibnfs(),
            "nfs://[::1]/x?version=3&nfsport=3000&mountport=3001");
}

TEST(NfsUrlTest, ThePathIsNormalizedAndTheVolumeKeyIgnoresHowItIsReached) {
  auto a = ParseNfsUrl("nfs://host:2049//srv//data/?version=4");
  auto b = ParseNfsUrl("nfs://host/srv/data?version=3");
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->path, "/srv/data");
  EXPECT_EQ(a->VolumeKey(), b->VolumeKey());
}

TEST(NfsUrlTest, BadUrlsSayWhatIsWrong) {
  struct Bad {
    const char* url;
    const char* why;
  };
  for (const Bad& bad : {Bad{"http://host/x", "not an nfs:// URL"},
                         Bad{"nfs://host", "no export path"},
                         Bad{"nfs://host/", "no export path"},
                         Bad{"nfs:///x", "no host"},
                         Bad{"nfs://host:0/x", "bad port"},
                         Bad{"nfs://host:65536/x", "bad port"},
                         Bad{"nfs://host:12a/x", "bad port"},
                         Bad{"nfs://[::1/x", "unclosed ["},
                         Bad{"nfs://host/a/../b", "may not hold . or .."},
                         Bad{"nfs://host/x?version=2", "version must be 3 or 4"},
                         Bad{"nfs://host/x?uid=0", "unknown argument"}}) {
    auto url = ParseNfsUrl(bad.url);
    ASSERT_FALSE(url.ok()) << bad.url;
    EXPECT_NE(std::string(url.status().message()).find(bad.why),
              std::string::npos)
        << bad.url << ": " << url.status();
  }
  EXPECT_TRUE(LooksLikeNfsUrl("NFS://host/x"));
  EXPECT_FALSE(LooksLikeNfsUrl("/mnt/nfs"));
}

}  // namespace
}  // namespace cachefs::testing
