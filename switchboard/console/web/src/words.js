// The domain's codes in the duty room's words.
export const LEVEL = { I: "特别重大", II: "重大", III: "较大", IV: "一般" };
export const STATUS = { reported: "已接报", responding: "处置中", closed: "已结束" };
export const CATEGORY = {
  natural_disaster: "自然灾害",
  accident_disaster: "事故灾难",
  public_health: "公共卫生事件",
  social_security: "社会安全事件",
};
export const COMPONENT = { database: "数据库", asterisk: "电话引擎", janus: "视频会商引擎" };

export const local = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—");

const LABELS = {
  "engine.link": (d) => `${COMPONENT[d.engine] || d.engine}连接${d.state === "up" ? "已恢复" : "中断"}`,
  "fax.progress": (d) => `传真进度：${d.status}`,
  "directory.imported": () => "通讯录已导入",
  "directory.shift_added": () => "值班表已更新",
};

/** An event as the feed shows it: its Chinese summary (events on a timeline carry its wording), else a label. */
export function describe(event) {
  const data = event.data || {};
  if (data.summary) return data.summary;
  const label = LABELS[event.type];
  return label ? label(data) : "系统动态";
}
