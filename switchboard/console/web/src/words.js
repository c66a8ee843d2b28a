// The domain's codes in the duty room's words.
export const LEVEL = { I: "特别重大", II: "重大", III: "较大", IV: "一般" };
export const STATUS = { reported: "已接报", responding: "处置中", closed: "已结束" };
export const CATEGORY = {
  natural_disaster: "自然灾害",
  accident_disaster: "事故灾难",
  public_health: "公共卫生事件",
  social_security: "社会安全事件",
};
export const ROLE = {
  duty_officer: "值班员",
  leader: "领导",
  alert_officer: "预警发布员",
  approver: "审核人",
  admin: "管理员",
};
export const KIND = {
  office_phone: "办公电话",
  mobile: "手机",
  home_phone: "住宅电话",
  fax: "传真",
  email: "电子邮件",
  telegram: "Telegram",
  wecom: "企业微信",
  sip_uri: "SIP 地址",
};
export const COMPONENT = {
  database: "数据库", asterisk: "电话引擎", janus: "视频会商引擎", gb28181: "国标视频接入", "gb28181:upper": "上级国标平台",
};
export const CHANNEL = {
  sms: "短信", email: "电子邮件", telegram: "Telegram", weather: "气象部门推送", wecom_app: "企业微信",
  wecom_robot: "企业微信群机器人", dingtalk: "钉钉群机器人", fax: "传真", voice: "语音电话",
};
export const COLOUR = { blue: "蓝色", yellow: "黄色", orange: "橙色", red: "红色" };
export const WARNING_STATE = { draft: "草稿", submitted: "待审核", approved: "已审核", issued: "已发布", cancelled: "已撤销" };
export const MSG_TYPE = { Alert: "首发", Update: "更新", Cancel: "撤销" };

/** The 初报 countdown as the list and the incident show it: red once overdue, orange within 30 minutes. */
export function clock(incident, now) {
  if (incident.first_report_at) return { text: "已初报", cls: "" };
  if (!incident.first_report_due_at) return { text: "不计时限", cls: "" };
  const left = Math.round((new Date(incident.first_report_due_at) - now) / 1000);
  const span = Math.abs(left);
  const hms = [Math.floor(span / 3600), Math.floor(span / 60) % 60, span % 60].map((n) => String(n).padStart(2, "0"));
  if (left < 0) return { text: `已超时 ${hms.join(":")}`, cls: "due" };
  return { text: `剩余 ${hms.join(":")}`, cls: left < 1800 ? "soon" : "" };
}

export const REPORT_KIND = { first: "初报", followup: "续报", final: "终报" };
export const TIMELINE_KIND = {
  incident: "事件", note: "备注", report: "报告", call: "电话", bridge: "会议", recording: "录音", fax: "传真",
  warning: "预警", consultation: "视频会商", notice: "通知",
};
export const NOTICE_STATE = { open: "进行中", completed: "已完成" };

export const local = (iso) => (iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—");

const who = (d) => d.party_name || d.name || d.number || "未知号码";

const LABELS = {
  "call.incoming": (d) => `来电：${who(d)}${d.party_org ? `（${d.party_org}）` : ""}`,
  "bridge.muted": (d) => (d.all ? "会议全体静音" : `${who(d)} 已静音`),
  "bridge.unmuted": (d) => (d.all ? "会议取消全体静音" : `${who(d)} 已取消静音`),
  "bridge.locked": () => "会议已锁定",
  "bridge.unlocked": () => "会议已解锁",
  "engine.link": (d) => `${COMPONENT[d.engine] || d.engine}连接${d.state === "up" ? "已恢复" : "中断"}`,
  "fax.progress": (d) => `传真进度：${d.status_name}`,
  "directory.imported": () => "通讯录已导入",
  "directory.shift_added": () => "值班表已更新",
  "camera.online": (d) => `摄像机 ${d.name} 上线`,
  "camera.offline": (d) => `摄像机 ${d.name} 离线（${d.reason_name}）`,
  "camera.catalog": (d) => `摄像机 ${d.name} 通道目录已更新（${d.channels} 路）`,
  "consultation.phone_muted": (d) => `会商电话 ${d.name || d.number} ${d.muted ? "已静音" : "已取消静音"}`,
};

/** An event as the feed shows it: its Chinese summary (events on a timeline carry its wording), else a label. */
export function describe(event) {
  const data = event.data || {};
  if (data.summary) return data.summary;
  const label = LABELS[event.type];
  if (label) return label(data);
  if (event.type.startsWith("call.") && data.state_name) return `${who(data)}：${data.state_name}`;
  return "系统动态";
}
